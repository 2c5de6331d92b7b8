"""QA recipe: both head modes scored as the original (by hand), and serving every doc-stride window."""

import io
import json
import math
import random

import keras
import numpy as np
import pytest
import tensorflow as tf
from hypothesis import given, settings
from hypothesis import strategies as st
from tensorflow.core.protobuf import saved_model_pb2

import convbert_tf
import finetuning_data
from convbert_tf.data.tokenization import BertTokenizer
from convbert_tf.finetuning.examples import QAExample
from convbert_tf.finetuning.export import export_task
from convbert_tf.finetuning.hparams import resolve_finetuning_hparams
from convbert_tf.finetuning.trainer import empty_label_arrays
from convbert_tf.finetuning.qa import features as qa_features
from convbert_tf.finetuning.qa import predictions as qa_predictions
from convbert_tf.finetuning.qa import reading as qa_reading
from convbert_tf.finetuning.qa import serving as qa_serving
from convbert_tf.finetuning.qa import windows as qa_windows
from convbert_tf.finetuning.run import run_finetuning
from convbert_tf.finetuning.tasks.registry import get_task
from convbert_tf.models.finetuning import FinetuningModel
from tests.test_text_inputs import ALLOWED_TF_TEXT_OPS

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat", "(", ")", "-", "18", "##95", "19", "##43",
         "sat", "on", "mat", ".", "who", "?", "ca", "##fe", "σ", "ο", "##δ", "##ο", "##ς", "i", "a", "e", "é",
         "##é"]
CONTEXT = "The cat (1895-1943) sat on the mat."
NEG = -10.0


@pytest.fixture(scope="module")
def tokenizer():
    return BertTokenizer(VOCAB)


def example(index, context, question="who sat?", split="dev", answer=None):
    """A QAExample as the reader makes it; `answer` (text, start) for training."""
    words, starts = qa_reading.split_context(context)
    text, start = answer or ("", -1)
    return QAExample(task="squad", split=split, example_index=index, qid=f"{split}{index}", question=question,
                     context=context, doc_words=words, word_starts=starts, answers=(text,) if text else (),
                     answer_text=text, answer_start=start, is_impossible=answer is None and split == "train")


def log_softmax(x):
    shifted = x - x.max(-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))


def logits(rows, length, values):
    """[rows, length] filled with NEG, then values {(row, position): logit}."""
    array = np.full((rows, length), NEG, np.float32)
    for index, value in values.items():
        array[index] = value
    return array


# ----------------------------------------------------------------------------------------------
# Independent start and end (joint_prediction false), and null odds without the classifier.
# One feature at max_seq_length 24: [CLS] who sat ? [SEP] the(5) cat(6) ((7) 18(8) ##95(9) -(10)
# 19(11) ##43(12) )(13) sat(14) on(15) the(16) mat(17) .(18) [SEP](19).


def test_independent_start_end_nbest_by_hand(tokenizer):
    examples = [example(0, CONTEXT)]
    features = get_task("squadv1").featurize(examples, tokenizer, 24, is_training=False)
    # Top 3 starts: 2 (a question token), 8, then 14 before 15 (equal logits: the lower position).
    start = logits(1, 24, {(0, 2): 5.0, (0, 8): 3.0, (0, 14): 2.0, (0, 15): 2.0, (0, 0): 1.0})
    # Top 3 ends: 9, 12, 17.
    end = logits(1, 24, {(0, 9): 2.5, (0, 12): 2.0, (0, 17): 1.5, (0, 0): 0.5})
    result = get_task("squadv1").postprocess(examples, features, {"start_logits": start, "end_logits": end},
                                             n_best_size=3, joint_prediction=False)
    nbest = result.nbest["dev0"]
    # (8, 9) 5.5; (8, 12) 5.0; (8, 17) 4.5; (14, 17) 3.5 is fourth; 14 with ends 9, 12 runs backwards.
    assert [e["text"] for e in nbest] == ["1895", "1895-1943", "1895-1943) sat on the mat"]
    assert [e["start_logit"] for e in nbest] == [3.0, 3.0, 3.0]
    assert [e["end_logit"] for e in nbest] == [2.5, 2.0, 1.5]
    total = sum(math.exp(s) for s in (5.5, 5.0, 4.5))
    assert [e["probability"] for e in nbest] == pytest.approx([math.exp(s) / total for s in (5.5, 5.0, 4.5)])
    assert result.predictions == {"dev0": "1895"} and result.null_odds == {}
    # n_best_size 5 reaches "sat on the mat" (14, 17) but not "on the mat" (15 is the 5th start).
    wider = get_task("squadv1").postprocess(examples, features, {"start_logits": start, "end_logits": end},
                                            n_best_size=5, max_answer_length=9, joint_prediction=False)
    assert [e["text"] for e in wider.nbest["dev0"]] == ["1895", "1895-1943", "sat on the mat", "on the mat"]


@pytest.fixture(scope="module")
def four_spans(tokenizer):
    # max_seq_length 12, doc_stride 3: four features with document positions 5..10 (tests/finetuning/test_qa.py).
    examples = [example(0, CONTEXT)]
    return examples, get_task("squad").featurize(examples, tokenizer, 12, is_training=False, doc_stride=3)


def test_null_odds_without_classifier_independent_by_hand(four_spans):
    examples, features = four_spans
    assert len(features) == 4
    start = logits(4, 12, {(0, 8): 2.0, (0, 0): 1.0, (1, 0): -0.5, (2, 0): 2.0, (3, 0): 0.0})
    end = logits(4, 12, {(0, 9): 1.5, (0, 0): 0.5, (1, 0): 1.0, (2, 0): -3.0, (3, 0): 0.25})

    def run(end_logits):
        return get_task("squad").postprocess(examples, features, {"start_logits": start, "end_logits": end_logits},
                                             n_best_size=1, joint_prediction=False, answerable_classifier=False)

    # [CLS] sums per feature 1.5, 0.5, -1.0, 0.25: score_null -1.0. Best span (8, 9) "1895" scores
    # 2.0 + 1.5 (the other features' top start is [CLS]). Null odds -1.0 - 2.0 - 1.5 = -4.5.
    result = run(end)
    assert result.null_odds == {"dev0": pytest.approx(-4.5)}
    assert result.predictions == {"dev0": "1895"} and result.best_answers == {"dev0": "1895"}
    # Feature 2's end [CLS] logit 0.0: score_null = min(1.5, 0.5, 2.0, 0.25) = 0.25, odds -3.25.
    end[2, 0] = 0.0
    assert run(end).null_odds == {"dev0": pytest.approx(-3.25)}
    # Sums 1.5, 1.25, 2.0, 1.0: score_null 1.0, odds -2.5 > -2.75: blanked, the best answer kept.
    end[1, 0], end[3, 0] = 1.75, 1.0
    result = run(end)
    assert result.null_odds == {"dev0": pytest.approx(-2.5)}
    assert result.predictions == {"dev0": ""} and result.best_answers == {"dev0": "1895"}


def test_null_odds_without_classifier_joint_by_hand(four_spans):
    examples, features = four_spans
    beams = {"start_top_index": np.array([[8], [0], [0], [0]]), "start_top_log_probs": np.full((4, 1), -0.2),
             "end_top_index": np.array([[[9]], [[0]], [[0]], [[0]]]), "end_top_log_probs": np.full((4, 1, 1), -0.3)}
    start = logits(4, 12, {(0, 0): 1.0, (1, 0): -3.5, (2, 0): 0.0, (3, 0): 2.0})

    def run(outputs):
        return get_task("squad").postprocess(examples, features, dict(beams, **outputs), answerable_classifier=False)

    # The original's end logits are zeros at inference in joint mode: score_null = min start
    # [CLS] logit = -3.5; odds -3.5 - (-0.2) - (-0.3) = -3.0 <= -2.75: answered.
    result = run({"start_logits": start})
    assert result.null_odds == {"dev0": pytest.approx(-3.0)} and result.predictions == {"dev0": "1895"}
    assert result.nbest["dev0"][0]["start_logit"] == pytest.approx(-0.2)
    # End logits, if given, are not read in joint mode.
    assert run({"start_logits": start, "end_logits": np.full((4, 12), 5.0)}).null_odds == result.null_odds
    start[1, 0] = -3.0  # odds -2.5: blanked
    assert run({"start_logits": start}).predictions == {"dev0": ""}
    # No legal span: the best span scores 0 (the original's placeholder), odds = score_null.
    no_span = dict(beams, start_top_index=np.zeros((4, 1), np.int64), start_logits=start)
    result = get_task("squad").postprocess(examples, features, no_span, answerable_classifier=False)
    assert result.null_odds == {"dev0": pytest.approx(-3.0)} and result.best_answers == {"dev0": ""}
    assert result.nbest == {"dev0": []}


def test_outputs_missing_for_the_mode_name_it(four_spans):
    examples, features = four_spans
    with pytest.raises(ValueError, match=r"start_logits \(joint_prediction false\)"):
        get_task("squad").postprocess(examples, features, {"end_logits": np.zeros((4, 12))}, joint_prediction=False,
                                      answerable_classifier=False)
    with pytest.raises(ValueError, match="answerable_logit .SQuAD 2.0 with the answerable classifier"):
        get_task("squad").postprocess(examples, features, {"start_logits": np.zeros((4, 12)),
                                                           "end_logits": np.zeros((4, 12))}, joint_prediction=False)
    with pytest.raises(ValueError, match="do not match 4 features: end_logits has shape"):
        get_task("squad").postprocess(examples, features, {"start_logits": np.zeros((4, 12)),
                                                           "end_logits": np.zeros((3, 12))}, joint_prediction=False,
                                      answerable_classifier=False)


@pytest.mark.parametrize("joint", [True, False])
def test_training_loss_without_classifier(joint):
    """Training in each mode without the answerable classifier: (start CE + end CE) / 2, no answerable term."""
    config = convbert_tf.ConvBertConfig(vocab_size=len(VOCAB), hidden_size=16, num_hidden_layers=1,
                                        num_attention_heads=2, intermediate_size=32, embedding_size=8,
                                        max_position_embeddings=16, conv_kernel_size=3)
    keras.utils.set_random_seed(0)
    model = FinetuningModel(convbert_tf.ConvBertEncoder(config), [get_task("squad")], beam_size=2,
                            joint_prediction=joint, answerable_classifier=False)
    arrays = empty_label_arrays(2, 8)
    arrays.update(input_ids=np.array([[2, 18, 3, 5, 6, 14, 3, 0]] * 2, np.int32),
                  input_mask=np.array([[1] * 7 + [0]] * 2, np.int32),
                  segment_ids=np.array([[0, 0, 0, 1, 1, 1, 1, 0]] * 2, np.int32),
                  start_positions=np.array([4, 0], np.int32), end_positions=np.array([5, 0], np.int32),
                  is_impossible=np.array([0.0, 1.0], np.float32))
    features = {k: tf.constant(v) for k, v in arrays.items()}
    outputs = model(features, training=True)
    assert "answerable_logit" not in outputs["squad"]
    start = outputs["squad"]["start_logits"].numpy()
    end = outputs["squad"]["end_logits"].numpy()
    assert np.all(start[:, [1, 2, 7]] < -900) and np.all(end[:, [1, 2, 7]] < -900)  # question and padding
    expected = -(log_softmax(start)[[0, 1], [4, 0]] + log_softmax(end)[[0, 1], [5, 0]]) / 2
    np.testing.assert_allclose(model.per_example_losses(features, outputs).numpy(), expected, rtol=1e-5)
    inference = model(features, training=False)["squad"]
    assert ("start_top_index" in inference) == joint and ("end_logits" in inference) == (not joint)


# ----------------------------------------------------------------------------------------------
# Serving's graph featurization against the Python featurization.


def python_pieces(tokenizer, context):
    """(ids, (start, end) character spans) of the context's pieces as `qa_features.featurize_qa` makes them."""
    ex = example(0, context)
    ids, _, chars = qa_features.document_tokens(ex, qa_features.word_pieces(tokenizer, ex.doc_words))
    return ids, chars


def graph_pieces_of(tokenizer):
    """contexts -> per context [(id, (start, end))] from `qa_windows.context_pieces` in a graph."""
    vocab = tf.constant(VOCAB)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def pieces(context):
        return qa_windows.context_pieces(tokenizer.module, vocab, context)

    def run(contexts):
        ids, starts, ends = pieces(tf.constant(contexts))
        return [list(zip(i, zip(s, e))) for i, s, e in zip(ids.to_list(), starts.to_list(), ends.to_list())]

    return run


@pytest.fixture(scope="module")
def graph_pieces(tokenizer):
    return graph_pieces_of(tokenizer)


TRICKY_CONTEXTS = [
    CONTEXT, "", "   ", "Café ca\u200bfe xyz\x1cthe  cat\u00a0mat",  # U+200B dropped; \x1c and NBSP split words
    "ΟΔΟΣ Σ ος",  # a final sigma: whole-word and per-character lower-casing differ (whole-word offsets)
    "e\u0301 cafe\u0301 İ",  # combining accents (NFC composes across characters), İ lower-cases to two
    "a" * 120 + " cat",  # over 100 characters: [UNK] with the word's offsets
    "the\u2028cat\tdog\n(18)",  # line separator, tab, newline
    "\U0001f600the cat\ufffd mat",  # an emoji ([UNK]) and a dropped U+FFFD
]


def test_context_pieces_match_featurization(tokenizer, graph_pieces):
    served = graph_pieces(TRICKY_CONTEXTS)
    for context, got in zip(TRICKY_CONTEXTS, served):
        ids, chars = python_pieces(tokenizer, context)
        assert got == list(zip(ids, chars)), context
    token = VOCAB.index
    # Sub-word offsets: "1895-1943" in pieces; "Café" loses its accent but keeps 4 characters.
    assert served[0][3:6] == [(token("18"), (9, 11)), (token("##95"), (11, 13)), (token("-"), (13, 14))]
    assert served[3][:2] == [(token("ca"), (0, 2)), (token("##fe"), (2, 4))]
    # "ΟΔΟΣ" lower-cases to "οδος" as a word but to "οδοσ" per character: every piece gets the
    # whole word's offsets; "ος" is traced piece by piece.
    assert served[4] == [(token(p), (0, 4)) for p in ("ο", "##δ", "##ο", "##ς")] + \
        [(token("σ"), (5, 6)), (token("ο"), (7, 8)), (token("##ς"), (8, 9))]


def test_context_pieces_match_featurization_keeping_accents():
    """Without accent stripping text is NFC-composed: a word's "e" + U+0301 becomes one character,
    which per-character normalization cannot trace, so the word takes whole-word offsets."""
    tokenizer = BertTokenizer(VOCAB, strip_accents=False)
    contexts = ["é café é Café éé"]
    (served,) = graph_pieces_of(tokenizer)(contexts)
    ids, chars = python_pieces(tokenizer, contexts[0])
    assert served == list(zip(ids, chars))
    assert served[0] == (VOCAB.index("é"), (0, 2)) and served[-2:] == [(VOCAB.index("é"), (16, 19)),
                                                                        (VOCAB.index("##é"), (16, 19))]


_CHARS = st.sampled_from(list("thecamsio ()-.?\t\n") + ["é", "e\u0301", "\u200b", "\x1c", "\u00a0", "Σ", "ς", "İ",
                                                       "\ufffd", "\x00", "中", "ﬁ", "\u2028", "18", "95"])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(_CHARS, max_size=24).map("".join), min_size=1, max_size=4))
def test_fuzz_context_pieces_match_featurization(tokenizer, graph_pieces, contexts):
    for context, got in zip(contexts, graph_pieces(contexts)):
        ids, chars = python_pieces(tokenizer, context)
        assert got == list(zip(ids, chars)), context


def test_python_whitespace_pattern_is_str_isspace():
    chars = [chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]
    matched = tf.strings.regex_full_match(tf.constant(chars), qa_windows.PYTHON_WHITESPACE).numpy()
    assert [c for c, m in zip(chars, matched) if m] == [c for c in chars if c.isspace()]


def test_doc_windows_and_max_context_match_python():
    cases = [(n, m, s) for n in range(0, 15) for m in range(1, 7) for s in range(1, 8)]
    n, m, s = (tf.constant(v, tf.int32) for v in zip(*cases))
    starts, lengths = qa_windows.doc_windows(n, m, tf.constant([stride for _, _, stride in cases]))
    best = qa_windows.max_context_windows(starts, lengths, 14).numpy()  # [cases, 14]
    for row, (tokens, max_tokens, stride) in enumerate(cases):
        spans = qa_features.doc_spans(tokens, max_tokens, stride)
        assert list(zip(starts[row].numpy(), lengths[row].numpy())) == spans, (tokens, max_tokens, stride)
        for piece in range(tokens):
            assert qa_features._is_max_context(spans, int(best[row, piece]), piece), (tokens, max_tokens, stride, piece)


# ----------------------------------------------------------------------------------------------
# Serving: every window of a long context, as dev is scored.

SERVING = dict(max_seq_length=16, max_query_length=4, doc_stride=4, n_best_size=5, max_answer_length=6)
FILLER = finetuning_data.FILLER[:9]
# The long context's answer lies in its 9th window of 10 (windows of 10 pieces, 4 apart).
SERVED_QUESTIONS = ["what answer ?", "what answer ?", "what answer ?", "what answer ?", "what is the answer ?"]
SERVED_CONTEXTS = [" ".join(FILLER[i % 9] for i in range(38)) + " great the movie",
                   "the bad movie was very very quite a film film the the", " ".join(FILLER[i % 9] for i in range(20)),
                   "", "a Nice film"]


def sentiment_example(index, rng, n_words, answerable, split):
    """A question whose answer is the context's one sentiment word (none when unanswerable)."""
    words = [rng.choice(FILLER) for _ in range(n_words)]
    if not answerable:
        return example(index, " ".join(words), "what answer ?", split)
    answer, position = rng.choice(finetuning_data.POSITIVE + finetuning_data.NEGATIVE), rng.randint(0, n_words)
    words.insert(position, answer)
    start = len(" ".join(words[:position])) + (1 if position else 0)
    return example(index, " ".join(words), "what answer ?", split, (answer, start))


def qa_model(joint=True, classifier=True, seed=0, layers=2):
    keras.utils.set_random_seed(seed)
    config = convbert_tf.ConvBertConfig(vocab_size=len(finetuning_data.VOCAB), embedding_size=16, conv_kernel_size=3,
                                        **dict(finetuning_data.MODEL, num_hidden_layers=layers))
    return FinetuningModel(convbert_tf.ConvBertEncoder(config), [get_task("squad")], beam_size=4,
                           joint_prediction=joint, answerable_classifier=classifier)


def model_arrays(features, keys=("input_ids", "input_mask", "segment_ids")):
    return {k: np.stack([f.model_inputs(0)[k] for f in features]) for k in keys}


@pytest.fixture(scope="module")
def qa_tokenizer():
    return BertTokenizer(finetuning_data.VOCAB)


@pytest.fixture(scope="module")
def trained_qa(qa_tokenizer):
    """A tiny SQuAD 2.0 model (joint beams, answerable classifier) trained to point at the sentiment word."""
    rng = random.Random(0)
    train = [sentiment_example(i, rng, rng.randint(3, 24), i % 5 != 4, "train") for i in range(160)]
    features = get_task("squad").featurize(train, qa_tokenizer, SERVING["max_seq_length"], True,
                                           max_query_length=SERVING["max_query_length"],
                                           doc_stride=SERVING["doc_stride"])
    arrays = empty_label_arrays(len(features), SERVING["max_seq_length"])
    arrays.update(model_arrays(features, ("input_ids", "input_mask", "segment_ids", "start_positions",
                                          "end_positions", "is_impossible")))
    model = qa_model()
    optimizer = keras.optimizers.Adam(3e-3)

    @tf.function
    def step(batch):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(model.per_example_losses(batch, model(batch, training=True)))
        optimizer.apply_gradients(zip(tape.gradient(loss, model.trainable_variables), model.trainable_variables))

    rows = np.random.default_rng(0)
    for _ in range(100):
        batch = rows.choice(len(features), 32)
        step({k: tf.constant(v[batch].astype(np.float32 if k == "is_impossible" else np.int32))
              for k, v in arrays.items()})
    return model


def dev_predictions(model, tokenizer, joint=True, classifier=True, version_2=True):
    """The in-process dev post-processing of SERVED_CONTEXTS: (examples, QAPredictions)."""
    examples = [example(i, c, q) for i, (q, c) in enumerate(zip(SERVED_QUESTIONS, SERVED_CONTEXTS))]
    features = get_task("squad").featurize(examples, tokenizer, SERVING["max_seq_length"], False,
                                           max_query_length=SERVING["max_query_length"],
                                           doc_stride=SERVING["doc_stride"])
    outputs = model({k: tf.constant(v) for k, v in model_arrays(features).items()}, training=False)["squad"]
    predictions = qa_predictions.postprocess_qa(examples, features, {k: v.numpy() for k, v in outputs.items()},
                                    version_2=version_2, n_best_size=SERVING["n_best_size"],
                                    max_answer_length=SERVING["max_answer_length"], joint_prediction=joint,
                                    answerable_classifier=classifier)
    return examples, predictions


def assert_served_equals_dev(served, examples, predictions, version_2=True):
    answers = [a.decode() for a in served["answer"].numpy()]
    assert answers == [predictions.predictions[e.qid] for e in examples]
    for e, start, end in zip(examples, served["start"].numpy(), served["end"].numpy()):
        best = predictions.best_answers[e.qid]
        assert (e.context[start:end], start >= 0) == (best, best != ""), e.qid
    if version_2:
        np.testing.assert_allclose(served["null_odds"].numpy(), [predictions.null_odds[e.qid] for e in examples],
                                   rtol=1e-6, atol=1e-6)
    else:
        assert np.all(served["null_odds"].numpy() == np.float32(qa_serving.NO_NULL_ODDS))


@pytest.fixture(scope="module")
def exported_qa(tmp_path_factory, trained_qa):
    vocab_file = tmp_path_factory.mktemp("vocab") / "vocab.txt"
    vocab_file.write_text("\n".join(finetuning_data.VOCAB) + "\n")
    path = export_task(trained_qa, get_task("squad"), tmp_path_factory.mktemp("qa") / "squad",
                       vocab_file=str(vocab_file), window_batch_size=3, **SERVING)
    return path, tf.saved_model.load(path)


@pytest.mark.slow
def test_saved_model_answers_from_every_window(trained_qa, exported_qa, qa_tokenizer):
    """The served answers are dev post-processing's, for a batch whose first answer lies in a late window."""
    _, loaded = exported_qa
    served = loaded.signatures["serving_default"](question=tf.constant(SERVED_QUESTIONS),
                                                  context=tf.constant(SERVED_CONTEXTS))
    examples, predictions = dev_predictions(trained_qa, qa_tokenizer)
    assert_served_equals_dev(served, examples, predictions)
    # The trained model finds "great" at character 202, past the first window's 10 pieces.
    assert served["answer"].numpy()[0] == b"great" and served["start"].numpy()[0] == SERVED_CONTEXTS[0].index("great")
    assert SERVED_CONTEXTS[0].index("great") > len(" ".join(SERVED_CONTEXTS[0].split()[:10]))
    assert [a.decode() for a in served["answer"].numpy()[1:]] == ["bad", "", "", "Nice"]


@pytest.mark.slow
def test_saved_model_serve_ids_scores_one_window_per_row(trained_qa, exported_qa, qa_tokenizer):
    _, loaded = exported_qa
    examples, predictions = dev_predictions(trained_qa, qa_tokenizer)
    short = [e for e in examples if len(e.context.split()) <= 10]  # one window each
    features = get_task("squad").featurize(short, qa_tokenizer, SERVING["max_seq_length"], False,
                                           max_query_length=SERVING["max_query_length"])
    assert len(features) == len(short)
    served = loaded.signatures["serve_ids"](**{k: tf.constant(v) for k, v in model_arrays(features).items()})
    assert [a.decode() for a in served["answer"].numpy()] == [predictions.predictions[e.qid].lower() for e in short]
    np.testing.assert_allclose(served["null_odds"].numpy(), [predictions.null_odds[e.qid] for e in short], rtol=1e-6)
    start, end = served["start"].numpy(), served["end"].numpy()
    for feature, e, s, t in zip(features, short, start, end):
        best = predictions.best_answers[e.qid]
        if best:  # the span's token positions cover the best answer's characters
            spans = feature.token_char_spans
            assert e.context[spans[s][0]:spans[t][1]] == best
        else:
            assert (s, t) == (-1, -1)


@pytest.mark.slow
def test_saved_model_graph_uses_only_serving_ops(exported_qa):
    path, _ = exported_qa
    proto = saved_model_pb2.SavedModel()
    with open(f"{path}/saved_model.pb", "rb") as f:
        proto.ParseFromString(f.read())
    graph = proto.meta_graphs[0].graph_def
    ops = {n.op for n in graph.node} | {n.op for fn in graph.library.function for n in fn.node_def}
    assert {op for op in ops if not hasattr(tf.raw_ops, op)} <= ALLOWED_TF_TEXT_OPS
    assert not ops & {"PyFunc", "EagerPyFunc", "PyFuncStateless"}
    assert not [fn.signature.name for fn in graph.library.function if fn.attr["_XlaMustCompile"].b]


@pytest.mark.parametrize("joint,classifier,version_2", [
    (False, False, True), *(pytest.param(*mode, marks=pytest.mark.slow)
                            for mode in [(True, False, True), (False, True, True), (True, True, False)])])
def test_served_modes_equal_dev_postprocessing(qa_tokenizer, joint, classifier, version_2):
    """Each head mode served in process (random weights): the answers, spans and null odds of dev."""
    model = qa_model(joint, classifier, seed=1, layers=1)
    examples, predictions = dev_predictions(model, qa_tokenizer, joint, classifier, version_2)
    config = qa_serving.QAServingConfig(version_2=version_2, joint_prediction=joint, answerable_classifier=classifier,
                                        window_batch_size=4, **SERVING)
    head = model.head("squad")

    def run_head(inputs):
        sequence = model.encoder(inputs, training=False)["sequence_output"]
        return head(sequence, inputs["input_mask"], inputs["segment_ids"], training=False)

    serve = tf.function(lambda q, c: qa_serving.answer_text(run_head, qa_tokenizer.module,
                                                            tf.constant(finetuning_data.VOCAB), q, c, config))
    served = serve(tf.constant(SERVED_QUESTIONS), tf.constant(SERVED_CONTEXTS))
    assert_served_equals_dev(served, examples, predictions, version_2)


@pytest.mark.slow
def test_fine_tuning_without_joint_prediction_or_classifier_end_to_end(tmp_path):
    """SQuAD 2.0 with joint_prediction and answerable_classifier false: trains, scores dev and
    serves the dev answers (the modes scoring used to reject after training)."""
    finetuning_data.write_pretrained(str(tmp_path))
    finetuning_data.write_squad(str(tmp_path))
    hparams = dict(finetuning_data.HPARAMS, task_names=["squad"], max_seq_length=24, max_query_length=6,
                   num_train_epochs=1.0, joint_prediction=False, answerable_classifier=False)
    summary = run_finetuning(resolve_finetuning_hparams(hparams, data_dir=str(tmp_path), model_name="tiny"),
                             tf.distribute.OneDeviceStrategy("/cpu:0"), out=io.StringIO())
    assert {"exact_match", "f1", "best_f1_thresh"} <= set(summary["squad"]["median"])
    trial_dir = tmp_path / "models" / "tiny" / "finetuning_models" / "squad_model_1"
    predictions = json.load(open(trial_dir / "dev_predictions" / "squad_dev" / "predictions.json"))
    null_odds = json.load(open(trial_dir / "dev_predictions" / "squad_dev" / "null_odds.json"))
    dev = json.load(open(tmp_path / "finetuning_data" / "squad" / "dev.json"))["data"][0]["paragraphs"][:8]
    served = tf.saved_model.load(str(trial_dir / "saved_model" / "squad")).signatures["serving_default"](
        question=tf.constant([p["qas"][0]["question"] for p in dev]), context=tf.constant([p["context"] for p in dev]))
    ids = [p["qas"][0]["id"] for p in dev]
    assert [a.decode() for a in served["answer"].numpy()] == [predictions[i] for i in ids]
    np.testing.assert_allclose(served["null_odds"].numpy(), [null_odds[i] for i in ids], rtol=1e-5, atol=1e-5)

