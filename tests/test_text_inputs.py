"""Graph-mode text packing against a plain-Python twin of BERT's `convert_single_example`."""

import random

import numpy as np
import pytest
import tensorflow as tf

from convbert_tf import text_inputs
from convbert_tf.data.tokenization import BertTokenizer

CLS, SEP, PAD = 2, 3, 0
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
WORDS = ["the", "quick", "brown", "fox", "jump", "##s", "##ed", "over", "lazy", "dog", "hello", "world",
         ",", ".", "!", "cafe", "un", "##believ", "##able"]
# The only tensorflow-text ops the packed graph may hold: the tokenizer's, all in stock TF Serving.
ALLOWED_TF_TEXT_OPS = {"NormalizeUTF8", "RegexSplitWithOffsets", "WordpieceTokenizeWithOffsets"}


# ----- the plain-Python reference ----------------------------------------------------------------

def reference_truncate_seq_pair(tokens_a, tokens_b, max_length):
    """BERT's `_truncate_seq_pair`, verbatim in behaviour: pops from the longer list, b on a tie."""
    while len(tokens_a) + len(tokens_b) > max_length:
        if len(tokens_a) > len(tokens_b):
            tokens_a.pop()
        else:
            tokens_b.pop()


def reference_pack(tokens_a, tokens_b, max_seq_length, cls_id=CLS, sep_id=SEP, pad_id=PAD):
    """BERT/ELECTRA fine-tuning featurization of token ids: (ids, mask, segments, truncated count)."""
    tokens_a = list(tokens_a)
    tokens_b = list(tokens_b) if tokens_b else None
    total = len(tokens_a) + (len(tokens_b) if tokens_b else 0)
    if tokens_b:
        reference_truncate_seq_pair(tokens_a, tokens_b, max_seq_length - 3)
    else:
        tokens_a = tokens_a[: max_seq_length - 2]
    ids = [cls_id] + tokens_a + [sep_id]
    segments = [0] * len(ids)
    if tokens_b:
        ids += tokens_b + [sep_id]
        segments += [1] * (len(tokens_b) + 1)
    kept = len(tokens_a) + (len(tokens_b) if tokens_b else 0)
    padding = max_seq_length - len(ids)
    return ids + [pad_id] * padding, [1] * len(ids) + [0] * padding, segments + [0] * padding, total - kept


def reference_batch(firsts, seconds, max_seq_length, **ids):
    rows = [reference_pack(a, None if seconds is None else seconds[i], max_seq_length, **ids)
            for i, a in enumerate(firsts)]
    return {key: np.array([row[k] for row in rows], np.int32)
            for k, key in enumerate(("input_ids", "input_mask", "segment_ids", "num_truncated"))}


def ragged(rows):
    return tf.ragged.constant(rows, dtype=tf.int32, ragged_rank=1, inner_shape=()) if any(rows) else \
        tf.RaggedTensor.from_row_lengths(tf.zeros([0], tf.int32), tf.zeros([len(rows)], tf.int64))


def packed_numpy(inputs, num_truncated):
    result = {key: value.numpy() for key, value in inputs.items()}
    result["num_truncated"] = num_truncated.numpy()
    return result


def assert_packed_equal(actual, expected):
    for key in ("input_ids", "input_mask", "segment_ids", "num_truncated"):
        np.testing.assert_array_equal(actual[key], expected[key], err_msg=key)


# ----- truncation --------------------------------------------------------------------------------

def test_truncate_seq_pair_closed_form_matches_the_loop():
    cases = [(a, b, m) for a in range(13) for b in range(13) for m in range(16)]
    first, second, budget = (np.array(column, np.int32) for column in zip(*cases))
    first_kept, second_kept = text_inputs.truncate_seq_pair(first, second, budget)
    for (a, b, m), a_kept, b_kept in zip(cases, first_kept.numpy(), second_kept.numpy()):
        tokens_a, tokens_b = list(range(a)), list(range(b))
        reference_truncate_seq_pair(tokens_a, tokens_b, m)
        assert (a_kept, b_kept) == (len(tokens_a), len(tokens_b)), (a, b, m)


# ----- packing token ids -------------------------------------------------------------------------

HAND_MADE_FIRST = [[10, 11, 12], [], [5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16], [20], [30, 31, 32, 33, 34, 35],
                   [], [40, 41]]
HAND_MADE_SECOND = [[50, 51], [52, 53, 54], [55], [60, 61, 62, 63, 64, 65, 66, 67, 68], [70, 71, 72, 73, 74, 75],
                    [], []]


@pytest.mark.parametrize("max_seq_length", [3, 4, 5, 8, 11, 30])
def test_pack_pairs_matches_reference(max_seq_length):
    actual = packed_numpy(*text_inputs.pack_token_ids(
        ragged(HAND_MADE_FIRST), ragged(HAND_MADE_SECOND), max_seq_length, CLS, SEP, PAD))
    assert_packed_equal(actual, reference_batch(HAND_MADE_FIRST, HAND_MADE_SECOND, max_seq_length))


@pytest.mark.parametrize("max_seq_length", [2, 3, 6, 30])
def test_pack_single_texts_matches_reference(max_seq_length):
    actual = packed_numpy(*text_inputs.pack_token_ids(ragged(HAND_MADE_FIRST), None, max_seq_length,
                                                      CLS, SEP, PAD))
    assert_packed_equal(actual, reference_batch(HAND_MADE_FIRST, None, max_seq_length))


def test_pack_layout_by_hand():
    inputs, num_truncated = text_inputs.pack_token_ids(
        ragged([[10, 11, 12, 13, 14], [10]]), ragged([[20, 21], []]), 8, CLS, SEP, PAD)
    # Row 0: a 5 + b 2 > 5 -> a loses 2 (5,2 -> 4,2 -> 3,2). Row 1: empty b -> single layout.
    np.testing.assert_array_equal(inputs["input_ids"], [[2, 10, 11, 12, 3, 20, 21, 3], [2, 10, 3, 0, 0, 0, 0, 0]])
    np.testing.assert_array_equal(inputs["input_mask"], [[1] * 8, [1, 1, 1, 0, 0, 0, 0, 0]])
    np.testing.assert_array_equal(inputs["segment_ids"], [[0, 0, 0, 0, 0, 1, 1, 1], [0] * 8])
    np.testing.assert_array_equal(num_truncated, [2, 0])
    for value in inputs.values():
        assert value.dtype == tf.int32 and value.shape == (2, 8)


def test_pack_random_long_inputs_matches_reference():
    rng = random.Random(0)
    firsts = [[rng.randrange(5, 99) for _ in range(rng.choice([0, 1, 3, 20, 60]))] for _ in range(64)]
    seconds = [[rng.randrange(5, 99) for _ in range(rng.choice([0, 1, 2, 9, 40, 70]))] for _ in range(64)]
    for max_seq_length in (7, 16, 64):
        actual = packed_numpy(*text_inputs.pack_token_ids(ragged(firsts), ragged(seconds), max_seq_length,
                                                          CLS, SEP, PAD))
        assert_packed_equal(actual, reference_batch(firsts, seconds, max_seq_length))
        actual = packed_numpy(*text_inputs.pack_token_ids(ragged(firsts), None, max_seq_length, CLS, SEP, PAD))
        assert_packed_equal(actual, reference_batch(firsts, None, max_seq_length))


def test_pack_rejects_too_short_max_seq_length():
    with pytest.raises(ValueError, match="at least 3 for text pairs.*got 2"):
        text_inputs.pack_token_ids(ragged([[5]]), ragged([[6]]), 2, CLS, SEP, PAD)
    with pytest.raises(ValueError, match="at least 2 for single texts.*got 1"):
        text_inputs.pack_token_ids(ragged([[5]]), None, 1, CLS, SEP, PAD)


# ----- packing raw text --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tokenizer():
    # [PAD] is put last so that a wrong special id could not pass for the right one.
    tokens = ["[UNK]", "[CLS]", "[SEP]", "[MASK]"] + WORDS + ["[PAD]"]
    return BertTokenizer(tokens)


TEXTS = ["The quick brown fox jumps over the lazy dog.", "", "Hello, world!", "Café unbelievable zzz",
         " ".join(["hello world"] * 12), "   "]
PAIRS = ["the dog", "Hello!", "", "fox " * 30, "quick", "x"]


def vocab_ids(tokenizer):
    ids = tokenizer.special_token_ids
    return {"cls_id": ids.cls, "sep_id": ids.sep, "pad_id": ids.pad}


@pytest.mark.parametrize("pairs", [False, True])
def test_pack_text_matches_tokenizer_and_reference(tokenizer, pairs):
    max_seq_length = 12
    packed = packed_numpy(*text_inputs.pack_text_inputs(
        tokenizer.module, tf.constant(TEXTS), tf.constant(PAIRS) if pairs else None, max_seq_length))
    expected = reference_batch(tokenizer.tokenize(TEXTS), tokenizer.tokenize(PAIRS) if pairs else None,
                               max_seq_length, **vocab_ids(tokenizer))
    assert_packed_equal(packed, expected)
    assert packed["num_truncated"].max() > 0  # the long texts were truncated


def test_pack_text_in_tf_data_map(tokenizer):
    """The fine-tuning input pipeline's use: packing inside Dataset.map, on batches of strings."""
    dataset = tf.data.Dataset.from_tensor_slices((TEXTS, PAIRS)).batch(4).map(
        lambda a, b: text_inputs.pack_text_inputs(tokenizer.module, a, b, max_seq_length=10))
    input_ids = np.concatenate([inputs["input_ids"].numpy() for inputs, _ in dataset])
    expected = reference_batch(tokenizer.tokenize(TEXTS), tokenizer.tokenize(PAIRS), 10, **vocab_ids(tokenizer))
    np.testing.assert_array_equal(input_ids, expected["input_ids"])


def graph_op_types(graph_def):
    """Every op type in a GraphDef, including those inside its function library."""
    ops = {node.op for node in graph_def.node}
    for function in graph_def.library.function:
        ops |= {node.op for node in function.node_def}
    return ops


def non_core_ops(op_types):
    """The op types not in core TensorFlow (tf.raw_ops lists exactly the core ops)."""
    return {op for op in op_types if not hasattr(tf.raw_ops, op)}


def test_packing_graph_uses_only_serving_safe_tf_text_ops(tokenizer):
    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)] * 2)
    def pack(texts, pairs):
        return text_inputs.pack_text_inputs(tokenizer.module, texts, pairs, max_seq_length=16)

    op_types = graph_op_types(pack.get_concrete_function().graph.as_graph_def())
    assert "WordpieceTokenizeWithOffsets" in op_types  # the tokenizer's function is in the library
    assert non_core_ops(op_types) == ALLOWED_TF_TEXT_OPS
    assert not {op for op in op_types if "Trim" in op or "RoundRobin" in op}
