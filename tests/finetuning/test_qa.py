"""SQuAD / MRQA reading, doc-span featurization and beam-search post-processing, by hand."""
import json
import math
import os
import tempfile

import numpy as np
import pytest
import tensorflow as tf
from hypothesis import given, settings
from hypothesis import strategies as st

from convbert_tf.data.tokenization import BertTokenizer
from convbert_tf.finetuning.examples import DataError, DataStats
from convbert_tf.finetuning.qa import features as qa_features
from convbert_tf.finetuning.qa import predictions as qa_predictions
from convbert_tf.finetuning.qa import reading as qa_reading
from convbert_tf.finetuning.tasks.registry import get_task

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat", "(", ")", "-", "18", "##95", "19", "##43",
         "sat", "on", "mat", ".", "who", "?", "when", "ca", "##fe", "dog"]
ID = {token: index for index, token in enumerate(VOCAB)}
CLS, SEP, PAD = ID["[CLS]"], ID["[SEP]"], ID["[PAD]"]

# Words: The(0) cat(4) (1895-1943)(8) sat(20) on(24) the(27) mat.(31)
# Sub-tokens: the cat ( 18 ##95 - 19 ##43 ) sat on the mat .   (document indices 0..13)
CONTEXT = "The cat (1895-1943) sat on the mat."
DOC_IDS = [ID[t] for t in ["the", "cat", "(", "18", "##95", "-", "19", "##43", ")", "sat", "on", "the", "mat", "."]]
QUESTION = [ID["who"], ID["sat"], ID["?"]]


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    path = tmp_path_factory.mktemp("vocab") / "vocab.txt"
    path.write_text("\n".join(VOCAB) + "\n")
    return BertTokenizer.from_vocab_file(str(path))


def _squad(qas, context=CONTEXT, version="1.1"):
    return {"version": version, "data": [{"title": "T", "paragraphs": [{"context": context, "qas": qas}]}]}


SQUAD_V1 = _squad([
    {"id": "q1", "question": "who sat?", "answers": [{"text": "1895", "answer_start": 9}]},
    {"id": "q2", "question": "when?", "answers": [{"text": "the mat", "answer_start": 27},
                                                  {"text": "mat", "answer_start": 31}]},
])
SQUAD_V2 = _squad([
    {"id": "a1", "question": "who sat?", "is_impossible": False,
     "answers": [{"text": "1895", "answer_start": 9}]},
    {"id": "n1", "question": "who ran?", "is_impossible": True, "answers": [],
     "plausible_answers": [{"text": "cat", "answer_start": 4}]},
], version="v2.0")


def _write(root, task, name, content):
    directory = os.path.join(root, "finetuning_data", task)
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, name)
    with open(path, "w", encoding="utf-8") as f:
        f.write(content if isinstance(content, str) else json.dumps(content))
    return path


def _read(tmp_path, task, content, split="train", **kwargs):
    name = "train.json" if split == "train" else "dev.json"
    if task not in ("squad", "squadv1"):
        name = name + "l"
    _write(str(tmp_path), task, name, content)
    return get_task(task).read_examples(str(tmp_path), split, **kwargs)


# ----------------------------------------------------------------------------------------------
# Reading.


def test_split_context():
    assert qa_reading.split_context(" a  bc\td\u00a0e ") == (("a", "bc", "d", "e"), (1, 4, 7, 9))


def test_read_squad_v1(tmp_path):
    stats = DataStats()
    q1, q2 = _read(tmp_path, "squadv1", SQUAD_V1, stats=stats)
    assert q1.doc_words == ("The", "cat", "(1895-1943)", "sat", "on", "the", "mat.")
    assert q1.word_starts == (0, 4, 8, 20, 24, 27, 31)
    assert (q1.qid, q1.question, q1.answer_text, q1.answer_start, q1.answers) == (
        "q1", "who sat?", "1895", 9, ("1895",))
    assert q2.answers == ("the mat", "mat") and q2.answer_start == 27 and q2.example_index == 1
    assert not q1.is_impossible and stats.questions == stats.examples == 2


def test_read_squad_v2_unanswerable(tmp_path):
    a1, n1 = _read(tmp_path, "squad", SQUAD_V2)
    assert not a1.is_impossible and a1.answer_start == 9
    assert n1.is_impossible and n1.answers == () and (n1.answer_text, n1.answer_start) == ("", -1)


def test_bad_training_answer_names_question(tmp_path):
    bad = _squad([{"id": "q-bad", "question": "q?", "answers": [{"text": "1895", "answer_start": 8}]},
                  {"id": "q-ok", "question": "q?", "answers": [{"text": "cat", "answer_start": 4}]}])
    with pytest.raises(DataError, match=r"train.json: .*question q-bad: answer '1895' does not occur at "
                                        r"answer_start 8 .*'\(189'.*skip_bad_answers"):
        _read(tmp_path, "squadv1", bad)
    stats = DataStats()
    examples = _read(tmp_path, "squadv1", bad, skip_bad_answers=True, stats=stats)
    assert [e.qid for e in examples] == ["q-ok"]
    assert stats.skipped == 1 and stats.questions == 2 and "q-bad" in stats.problems[0]
    # On dev the texts are the gold and positions are unused: kept, counted.
    stats = DataStats()
    examples = _read(tmp_path, "squadv1", bad, split="dev", stats=stats)
    assert [e.qid for e in examples] == ["q-bad", "q-ok"] and examples[0].answer_start == -1
    assert examples[0].answers == ("1895",) and stats.unchecked_answers == 1


@pytest.mark.parametrize("content, message", [
    ('{"data": [', r"train.json:1: not valid JSON"),
    ('{"version": "1.1",\n "data": {}}', r"'data' must be a list"),
    (json.dumps(_squad([{"id": "q", "question": 3, "answers": []}])), r"'question' is not a string"),
    (json.dumps(_squad([{"id": "q", "question": "q?", "answers": []}])), r"question q: an answerable question"),
    (json.dumps(_squad([{"id": "q", "question": "q?", "answers": [{"text": "cat", "answer_start": 4}]},
                        {"id": "q", "question": "q?", "answers": [{"text": "cat", "answer_start": 4}]}])),
     r"question id 'q' repeats"),
    (json.dumps(_squad([{"id": "q", "question": "q?", "answers": [{"text": "cat", "answer_start": "4"}]}])),
     r"answer_start '4' is not a non-negative integer"),
])
def test_malformed_squad_json(tmp_path, content, message):
    with pytest.raises(DataError, match=message):
        _read(tmp_path, "squadv1", content)


MRQA = "\n".join(json.dumps(line) for line in [
    {"header": {"dataset": "NewsQA", "split": "train"}},
    {"id": "c1", "context": CONTEXT, "qas": [
        {"qid": "m1", "question": "who sat?", "answers": ["1895", "in 1895"],
         "detected_answers": [{"text": "1895", "char_spans": [[9, 12]], "token_spans": [[2, 2]]}]},
        {"qid": "m2", "question": "when?", "answers": ["The mat"],
         "detected_answers": [{"text": "the mat", "char_spans": [[27, 33]], "token_spans": [[5, 6]]}]}]},
]) + "\n"


def test_read_mrqa_jsonl(tmp_path):
    stats = DataStats()
    m1, m2 = _read(tmp_path, "newsqa", MRQA, stats=stats)
    assert (m1.qid, m1.answers, m1.answer_text, m1.answer_start) == ("m1", ("1895", "in 1895"), "1895", 9)
    assert (m2.answer_text, m2.answer_start, m2.answers) == ("the mat", 27, ("The mat",))
    assert stats.header_lines == 1 and stats.lines == 2 and stats.questions == 2


def test_mrqa_char_span_past_the_context_is_a_bad_answer(tmp_path):
    line = {"context": "a cat", "qas": [{"qid": "m9", "question": "q?", "answers": ["cat"],
                                         "detected_answers": [{"text": "cat", "char_spans": [[2, 40]]}]}]}
    with pytest.raises(DataError, match=r"train.jsonl:1: qas\[0\]: question m9: answer text '' is empty"):
        _read(tmp_path, "searchqa", json.dumps(line))


def test_mrqa_bad_line_names_line(tmp_path):
    with pytest.raises(DataError, match=r"train.jsonl:2: not valid JSON"):
        _read(tmp_path, "triviaqa", '{"header": {}}\n{"context": \n')


def test_tfds_squad_with_a_fake_prepared_builder(monkeypatch, tmp_path):
    import tensorflow_datasets as tfds

    records = [("a1", "who sat?", [b"1895"], [9], False), ("n1", "who ran?", [], [], True)]

    class Builder:
        info = type("Info", (), {"splits": {"train": None}})()

        def is_prepared(self):
            return True

        def as_dataset(self, split, shuffle_files=False):
            def generate():
                for qid, question, texts, starts, impossible in records:
                    yield {"id": qid, "question": question, "context": CONTEXT, "is_impossible": impossible,
                           "answers": {"text": np.array(texts, dtype=object).astype(bytes) if texts else
                                       np.zeros([0], dtype=bytes), "answer_start": np.array(starts, np.int32)}}
            signature = {"id": tf.TensorSpec([], tf.string), "question": tf.TensorSpec([], tf.string),
                         "context": tf.TensorSpec([], tf.string), "is_impossible": tf.TensorSpec([], tf.bool),
                         "answers": {"text": tf.TensorSpec([None], tf.string),
                                     "answer_start": tf.TensorSpec([None], tf.int32)}}
            return tf.data.Dataset.from_generator(generate, output_signature=signature)

    calls = []
    monkeypatch.setattr(tfds, "builder", lambda name, data_dir: calls.append(name) or Builder())
    a1, n1 = get_task("squad").read_examples(str(tmp_path), "train", tfds_data_dir="/tfds")
    assert calls == ["squad/v2.0"]
    assert (a1.qid, a1.answer_text, a1.answer_start, a1.doc_words[2]) == ("a1", "1895", 9, "(1895-1943)")
    assert n1.is_impossible and n1.answers == ()


# ----------------------------------------------------------------------------------------------
# Sub-token offsets and featurization.


def test_word_pieces_offsets(tokenizer):
    pieces = qa_features.word_pieces(tokenizer, ["(1895-1943)", "Café", "ca\u200bfe", "mat.", "xyz"])
    assert pieces["(1895-1943)"] == [(ID["("], 0, 1), (ID["18"], 1, 3), (ID["##95"], 3, 5), (ID["-"], 5, 6),
                                     (ID["19"], 6, 8), (ID["##43"], 8, 10), (ID[")"], 10, 11)]
    assert pieces["Café"] == [(ID["ca"], 0, 2), (ID["##fe"], 2, 4)]  # accent stripped, offsets kept
    assert pieces["ca\u200bfe"] == [(ID["ca"], 0, 2), (ID["##fe"], 3, 5)]  # the dropped U+200B is skipped
    assert pieces["mat."] == [(ID["mat"], 0, 3), (ID["."], 3, 4)]
    assert pieces["xyz"] == [(ID["[UNK]"], 0, 3)]


def test_doc_spans_and_max_context_by_hand():
    # 14 tokens, 6 per span, stride 3: starts 0, 3, 6, 9 (the last reaches the end).
    spans = qa_features.doc_spans(14, 6, 3)
    assert spans == [(0, 6), (3, 6), (6, 6), (9, 5)]
    # Token 4: span 0 gives min(4, 1) + 0.06, span 1 min(1, 4) + 0.06: a tie, the first wins.
    assert [qa_features._is_max_context(spans, s, 4) for s in range(4)] == [True, False, False, False]
    # Token 5: span 0 min(5, 0), span 1 min(2, 3): span 1.
    assert [qa_features._is_max_context(spans, s, 5) for s in range(4)] == [False, True, False, False]
    # Token 10: span 2 min(4, 1) + 0.06 beats span 3 min(1, 3) + 0.05.
    assert [qa_features._is_max_context(spans, s, 10) for s in range(4)] == [False, False, True, False]
    assert qa_features.doc_spans(0, 6, 3) == [(0, 0)]
    assert qa_features.doc_spans(5, 6, 3) == [(0, 5)]


# Per span of q1 at max_seq_length 12, doc_stride 3: (input ids, token_to_orig_map,
# token_is_max_context, start, end). Row positions 5.. hold the span (offset = 3 + 2).
EXPECTED_SPANS = [
    ([CLS] + QUESTION + [SEP] + DOC_IDS[0:6] + [SEP], {5: 0, 6: 1, 7: 2, 8: 2, 9: 2, 10: 2},
     {5: True, 6: True, 7: True, 8: True, 9: True, 10: False}, 8, 9),
    ([CLS] + QUESTION + [SEP] + DOC_IDS[3:9] + [SEP], {5: 2, 6: 2, 7: 2, 8: 2, 9: 2, 10: 2},
     {5: False, 6: False, 7: True, 8: True, 9: True, 10: False}, 5, 6),
    ([CLS] + QUESTION + [SEP] + DOC_IDS[6:12] + [SEP], {5: 2, 6: 2, 7: 2, 8: 3, 9: 4, 10: 5},
     {5: False, 6: False, 7: True, 8: True, 9: True, 10: False}, 0, 0),
    ([CLS] + QUESTION + [SEP] + DOC_IDS[9:14] + [SEP, PAD], {5: 3, 6: 4, 7: 5, 8: 6, 9: 6},
     {5: False, 6: False, 7: True, 8: True, 9: True}, 0, 0),
]


@pytest.fixture(scope="module")
def v1_examples(tmp_path_factory):
    root = tmp_path_factory.mktemp("squad")
    _write(str(root), "squadv1", "train.json", SQUAD_V1)
    return get_task("squadv1").read_examples(str(root), "train")


def test_featurize_doc_stride_spans_by_hand(v1_examples, tokenizer):
    stats = DataStats()
    features = get_task("squadv1").featurize(v1_examples[:1], tokenizer, 12, is_training=True, stats=stats,
                                             doc_stride=3)
    assert len(features) == 4
    for span_index, (feature, expected) in enumerate(zip(features, EXPECTED_SPANS)):
        ids, to_orig, max_context, start, end = expected
        assert list(feature.input_ids) == ids
        n_real = sum(1 for i in ids if i != PAD)
        assert list(feature.segment_ids) == [0] * 5 + [1] * (n_real - 5) + [0] * (12 - n_real)
        assert list(feature.input_mask) == [1] * n_real + [0] * (12 - n_real)
        assert feature.token_to_orig_map == to_orig
        assert feature.token_is_max_context == max_context
        assert (feature.start_position, feature.end_position) == (start, end)
        assert (feature.eid, feature.span_index, feature.is_impossible) == (span_index, span_index, 0.0)
    assert features[0].token_char_spans[8] == (9, 11) and features[0].token_char_spans[9] == (11, 13)
    assert stats.answers_out_of_span == 2 and stats.multi_span == 1 and stats.features == 4


def test_featurize_eid_query_truncation_and_eval(v1_examples, tokenizer):
    stats = DataStats()
    features = get_task("squadv1").featurize(v1_examples, tokenizer, 32, is_training=False, stats=stats,
                                             max_query_length=2)
    assert [f.eid for f in features] == [0, 1000]
    assert list(features[0].input_ids[:4]) == [CLS, ID["who"], ID["sat"], SEP]  # "?" cut
    assert stats.truncated == 1  # "when ?" fits in 2
    assert all((f.start_position, f.end_position) == (0, 0) for f in features)
    # q2's answer "the mat" starts at the second "the" (answer_start 27): document tokens 11-12.
    (train_q2,) = get_task("squadv1").featurize(v1_examples[1:], tokenizer, 32, is_training=True)
    offset = 2 + 2  # [CLS] when ? [SEP]
    assert (train_q2.start_position, train_q2.end_position) == (offset + 11, offset + 12)


def test_featurize_v2_unanswerable(tmp_path, tokenizer):
    examples = _read(tmp_path, "squad", SQUAD_V2)
    features = get_task("squad").featurize(examples, tokenizer, 12, is_training=True, doc_stride=3)
    answerable = [f for f in features if f.example_index == 0]
    impossible = [f for f in features if f.example_index == 1]
    assert [(f.start_position, f.end_position) for f in answerable] == [(8, 9), (5, 6), (0, 0), (0, 0)]
    assert all(f.is_impossible == 0.0 for f in answerable)
    assert all((f.start_position, f.end_position, f.is_impossible) == (0, 0, 1.0) for f in impossible)
    inputs = impossible[0].model_inputs(task_id=1)
    assert (inputs["start_positions"], inputs["is_impossible"], inputs["task_id"]) == (0, 1.0, 1)


def test_featurize_rejects_too_short_sequences(v1_examples, tokenizer):
    with pytest.raises(ValueError, match="leaves no room"):
        get_task("squadv1").featurize(v1_examples, tokenizer, 6, is_training=True)


# ----------------------------------------------------------------------------------------------
# Post-processing.


def _outputs(starts, start_lp, ends, end_lp, answerable=None):
    out = {"start_top_index": np.array(starts), "start_top_log_probs": np.array(start_lp, np.float32),
           "end_top_index": np.array(ends), "end_top_log_probs": np.array(end_lp, np.float32)}
    if answerable is not None:
        out["answerable_logit"] = np.array(answerable, np.float32)
    return out


@pytest.fixture(scope="module")
def one_span(v1_examples, tokenizer):
    # [CLS] who sat ? [SEP] the(5) cat(6) ((7) 18(8) ##95(9) -(10) 19(11) ##43(12) )(13) sat(14) on(15)
    # the(16) mat(17) .(18) [SEP]
    return v1_examples[:1], get_task("squadv1").featurize(v1_examples[:1], tokenizer, 24, is_training=False)


def test_postprocess_nbest_by_hand(one_span):
    examples, features = one_span
    outputs = _outputs([[8, 14]], [[-0.1, -2.0]], [[[9, 12], [17, 3]]], [[[-0.2, -1.0], [-0.5, -0.1]]])
    result = get_task("squadv1").postprocess(examples, features, outputs)
    nbest = result.nbest["q1"]
    # (8, 9) -0.3 "1895"; (8, 12) -1.1 "1895-1943"; (14, 17) -2.5 "sat on the mat"; (14, 3) ends before it starts.
    assert [e["text"] for e in nbest] == ["1895", "1895-1943", "sat on the mat"]
    scores = [-0.3, -1.1, -2.5]
    total = sum(math.exp(s) for s in scores)
    assert [e["probability"] for e in nbest] == pytest.approx([math.exp(s) / total for s in scores])
    assert [e["start_logit"] for e in nbest] == pytest.approx([-0.1, -0.1, -2.0])
    assert [e["end_logit"] for e in nbest] == pytest.approx([-0.2, -1.0, -0.5])
    assert result.predictions == {"q1": "1895"} and result.null_odds == {} and result.na_threshold is None
    # max_answer_length 4 drops the 5-token "1895-1943"; n_best_size 1 keeps only the best.
    short = get_task("squadv1").postprocess(examples, features, outputs, max_answer_length=4)
    assert [e["text"] for e in short.nbest["q1"]] == ["1895", "sat on the mat"]
    assert [e["text"] for e in get_task("squadv1").postprocess(examples, features, outputs,
                                                               n_best_size=1).nbest["q1"]] == ["1895"]


def test_postprocess_drops_question_positions(one_span):
    examples, features = one_span
    outputs = _outputs([[2, 0]], [[-0.1, -0.2]], [[[9, 2], [0, 9]]], [[[-0.1, -0.1], [-0.1, -0.1]]])
    result = get_task("squadv1").postprocess(examples, features, outputs)
    assert result.nbest["q1"] == [] and result.predictions["q1"] == ""


def test_postprocess_uses_max_context_spans(v1_examples, tokenizer):
    features = get_task("squadv1").featurize(v1_examples[:1], tokenizer, 12, is_training=False, doc_stride=3)
    outputs = _outputs([[8], [5], [7], [9]], [[-1.0], [-0.1], [-3.0], [-0.1]], [[[9]], [[6]], [[8]], [[5]]],
                       [[[-1.0]], [[-0.1]], [[-3.0]], [[-0.1]]])
    result = get_task("squadv1").postprocess(v1_examples[:1], features, outputs)
    # Span 1 starts at document token 3, whose max context is span 0: dropped despite its score.
    # Span 3's end comes before its start.
    assert [e["text"] for e in result.nbest["q1"]] == ["1895", ") sat"]


def test_postprocess_dedupes_text(tmp_path, tokenizer):
    examples = _read(tmp_path, "squadv1", _squad([{"id": "c", "question": "cat?", "answers": [
        {"text": "cat", "answer_start": 0}]}], context="cat cat"))
    features = get_task("squadv1").featurize(examples, tokenizer, 16, is_training=False)
    # [CLS] cat ? [SEP] cat(4) cat(5) [SEP]
    outputs = _outputs([[4, 5]], [[-0.5, -0.6]], [[[4, 5], [5, 4]]], [[[-0.1, -0.2], [-0.1, -0.3]]])
    result = get_task("squadv1").postprocess(examples, features, outputs)
    assert [e["text"] for e in result.nbest["c"]] == ["cat", "cat cat"]


def test_postprocess_v2_null_odds_and_threshold(tmp_path, tokenizer):
    examples = _read(tmp_path, "squad", SQUAD_V2)
    features = get_task("squad").featurize(examples, tokenizer, 12, is_training=False, doc_stride=3)
    assert [f.example_index for f in features] == [0, 0, 0, 0, 1, 1, 1, 1]
    starts = [[8]] * 8
    ends = [[[9]]] * 8
    log_probs = [[-1.0]] * 8
    end_log_probs = [[[-1.0]]] * 8

    def run(answerable):
        outputs = _outputs(starts, log_probs, ends, end_log_probs, answerable)
        return get_task("squad").postprocess(examples, features, outputs)

    # a1: min over its features = -4 <= -2.75: answered. n1: min = 3 > -2.75: blanked.
    result = run([1.0, -4.0, 2.0, 2.0, 3.0, 5.0, 4.0, 3.5])
    assert result.null_odds == {"a1": -4.0, "n1": 3.0}
    assert result.predictions == {"a1": "1895", "n1": ""}
    assert result.best_answers == {"a1": "1895", "n1": "1895"} and result.na_threshold == -2.75
    # Exactly at the threshold is kept ("> threshold" blanks); just above is blanked.
    result = run([-2.75] * 4 + [-2.7] * 4)
    assert result.predictions == {"a1": "1895", "n1": ""}
    scores = get_task("squad").score(examples, result)
    assert scores["exact_match"] == 100.0 and scores["NoAns_total"] == 1
    with pytest.raises(ValueError, match="answerable_logit"):
        get_task("squad").postprocess(examples, features, _outputs(starts, log_probs, ends, end_log_probs))


def test_postprocess_checks_alignment(one_span):
    examples, features = one_span
    with pytest.raises(ValueError, match="do not match 1 features"):
        get_task("squadv1").postprocess(examples, features, _outputs([[8], [8]], [[0.0], [0.0]], [[[9]], [[9]]],
                                                                     [[[0.0]], [[0.0]]]))


def test_write_qa_outputs(tmp_path):
    predictions = qa_predictions.QAPredictions({"a": "cat", "b": ""}, {"a": "cat", "b": "dog"},
                                   {"a": [{"text": "cat", "probability": 1.0, "start_logit": -0.1,
                                           "end_logit": -0.2}], "b": []}, {"a": -3.0, "b": 1.5}, -2.75)
    paths = qa_predictions.write_qa_outputs(tmp_path / "out", predictions)
    assert sorted(paths) == ["nbest_predictions.json", "null_odds.json", "predictions.json"]
    assert json.load(open(paths["predictions.json"])) == {"a": "cat", "b": ""}
    assert json.load(open(paths["null_odds.json"])) == {"a": -3.0, "b": 1.5}
    assert json.load(open(paths["nbest_predictions.json"]))["a"][0]["text"] == "cat"
    assert sorted(os.listdir(tmp_path / "out")) == sorted(paths)  # no temporary files left
    v1 = qa_predictions.QAPredictions({"a": "cat"}, {"a": "cat"}, {"a": []}, {})
    assert sorted(qa_predictions.write_qa_outputs(tmp_path / "v1", v1)) == ["nbest_predictions.json",
                                                                             "predictions.json"]


# ----------------------------------------------------------------------------------------------
# Fuzz: hostile SQuAD JSON never raises anything but DataError; every question is counted.

_TEXT = st.text(alphabet=st.sampled_from(list("ab .\n\t") + ["é", "\x00", "\u200b", "\ufeff"]), max_size=12)
_JSONISH = st.recursive(st.none() | st.booleans() | st.integers(-3, 40) | _TEXT | st.just("\ud800"),
                        lambda children: st.lists(children, max_size=3) | st.dictionaries(
                            st.sampled_from(["id", "text", "answer_start", "answers", "question", "context", "qas",
                                             "paragraphs", "data", "is_impossible"]), children, max_size=4),
                        max_leaves=12)


@st.composite
def _paragraph(draw):
    """A paragraph whose answers are right, shifted, or hostile values, and ids mostly unique."""
    context = draw(_TEXT)
    qas = []
    for _ in range(draw(st.integers(0, 3))):
        answers = []
        for _ in range(draw(st.integers(0, 2))):
            start = draw(st.integers(0, max(len(context) - 1, 0)))
            end = draw(st.integers(start, len(context)))
            answer = {"text": context[start:end], "answer_start": start + draw(st.sampled_from([0, 0, 0, 1, -1]))}
            if draw(st.integers(0, 4)) == 0:
                answer[draw(st.sampled_from(["text", "answer_start"]))] = draw(_JSONISH)
            answers.append(answer)
        qid = draw(st.uuids().map(str) | _JSONISH) if draw(st.integers(0, 4)) == 0 else draw(st.uuids().map(str))
        qas.append({"id": qid, "question": draw(_TEXT), "answers": answers, "is_impossible": draw(st.booleans())})
    return {"context": context, "qas": qas}


_DOC = st.fixed_dictionaries({"data": st.lists(st.fixed_dictionaries({"paragraphs": st.lists(_paragraph(),
                                                                                         max_size=2)}), max_size=2)})
_FUZZ = settings(max_examples=50, deadline=None, derandomize=True, database=None)


def _read_counted(document, task_name, split):
    with tempfile.TemporaryDirectory() as root:
        _write(root, task_name, f"{split}.json", document)
        stats = DataStats()
        try:
            examples = get_task(task_name).read_examples(root, split, skip_bad_answers=True, stats=stats)
        except DataError:
            return
        assert stats.questions == len(examples) + stats.skipped
        for example in examples:
            if example.answer_start >= 0:
                start = example.answer_start
                assert example.context[start : start + len(example.answer_text)] == example.answer_text


@_FUZZ
@given(document=_DOC.map(json.dumps), task_name=st.sampled_from(["squadv1", "squad"]),
       split=st.sampled_from(["train", "dev"]))
def test_fuzz_squad_reader(document, task_name, split):
    _read_counted(document, task_name, split)


@_FUZZ
@given(document=_JSONISH.map(json.dumps) | st.text(max_size=40), task_name=st.sampled_from(["squadv1", "squad"]))
def test_fuzz_squad_reader_hostile_json(document, task_name):
    _read_counted(document, task_name, "train")
