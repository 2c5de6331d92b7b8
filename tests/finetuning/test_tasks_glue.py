"""GLUE reading, featurization, scoring and submission files, and the task registry's names."""
import json
import os
import tempfile

import numpy as np
import pytest
import tensorflow as tf
from hypothesis import given
from hypothesis import strategies as st

from convbert_tf.finetuning.examples import DataError, DataStats, Example, stack_model_inputs
from convbert_tf.finetuning.tasks.registry import TASKS, get_task
from convbert_tf.io import is_temporary
from finetuning_data import FUZZ, RAW_TEXT, WORD_VOCAB, word_tokenizer, write_task_file

ID = {token: index for index, token in enumerate(WORD_VOCAB)}
PAD, CLS, SEP = ID["[PAD]"], ID["[CLS]"], ID["[SEP]"]


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    return word_tokenizer(tmp_path_factory.mktemp("vocab"))


def _tsv(*rows):
    return "".join("\t".join(row) + "\n" for row in rows)


MNLI_TRAIN_HEADER = ("index", "promptID", "pairID", "genre", "sentence1_binary_parse", "sentence2_binary_parse",
                     "sentence1_parse", "sentence2_parse", "sentence1", "sentence2", "label1", "gold_label")
MNLI_DEV_HEADER = MNLI_TRAIN_HEADER[:11] + ("label2", "label3", "label4", "label5", "gold_label")
MNLI_TEST_HEADER = MNLI_TRAIN_HEADER[:10]
STS_HEADER = ("index", "genre", "filename", "year", "old_index", "source1", "source2", "sentence1", "sentence2")


def _mnli_row(index, a, b, label=None, dev=False):
    row = (str(index), "31193", "31193n", "government", "( ( a ) )", "( b )", "(ROOT a)", "(ROOT b)", a, b)
    if label is None:
        return row
    return row + ((label,) * 5 + (label,) if dev else (label, label))


# Every GLUE file in the layout download_glue_data.py writes, two rows each.
GLUE_FILES = {
    "cola": {
        "train.tsv": _tsv(("gj04", "1", "", "The cat sat."), ("gj04", "0", "*", "Cat the sat.")),
        "dev.tsv": _tsv(("gj04", "1", "", "A dog ran."), ("gj04", "0", "*", "Ran dog a.")),
        "test.tsv": _tsv(("index", "sentence"), ("0", "The mat."), ("1", "A cat.")),
    },
    "sst": {
        "train.tsv": _tsv(("sentence", "label"), ("the big cat ", "1"), ("a red dog ", "0")),
        "dev.tsv": _tsv(("sentence", "label"), ("it is big ", "1"), ("it is red ", "0")),
        "test.tsv": _tsv(("index", "sentence"), ("0", "the cat ."), ("1", "a dog .")),
    },
    "mrpc": {
        "train.tsv": _tsv(("Quality", "#1 ID", "#2 ID", "#1 String", "#2 String"),
                          ("1", "702876", "702977", "The cat sat.", "A cat sat."),
                          ("0", "2108705", "2108831", "The dog ran.", "The mat.")),
        "dev.tsv": _tsv(("Quality", "#1 ID", "#2 ID", "#1 String", "#2 String"),
                        ("1", "1", "2", "It is red.", "It is red.")),
        "test.tsv": _tsv(("index", "#1 ID", "#2 ID", "#1 String", "#2 String"), ("0", "1", "2", "A dog.", "A cat.")),
    },
    "sts": {
        "train.tsv": _tsv(STS_HEADER + ("score",),
                          ("0", "main-captions", "MSRvid", "2012test", "0001", "none", "none", "A cat sat.",
                           "The cat sat.", "5.000"),
                          ("1", "main-captions", "MSRvid", "2012test", "0004", "none", "none", "A dog ran.",
                           "The mat.", "0.500")),
        "dev.tsv": _tsv(STS_HEADER + ("score",),
                        ("0", "main-captions", "MSRvid", "2012test", "0000", "none", "none", "A red dog.",
                         "A big dog.", "2.5")),
        "test.tsv": _tsv(STS_HEADER, ("0", "main-captions", "MSRvid", "2012test", "0000", "none", "none",
                                      "A cat.", "A dog.")),
    },
    "qqp": {
        "train.tsv": _tsv(("id", "qid1", "qid2", "question1", "question2", "is_duplicate"),
                          ("0", "1", "2", "Is it red?", "Is it big?", "0"),
                          ("1", "3", "4", "Is the cat big?", "Is the cat big?", "1")),
        "dev.tsv": _tsv(("id", "qid1", "qid2", "question1", "question2", "is_duplicate"),
                        ("7", "8", "9", "A cat?", "A dog?", "0")),
        "test.tsv": _tsv(("id", "question1", "question2"), ("0", "Is it a cat?", "Is it a dog?")),
    },
    "mnli": {
        "train.tsv": _tsv(MNLI_TRAIN_HEADER, _mnli_row(0, "The cat sat.", "A cat sat.", "entailment"),
                          _mnli_row(1, "The cat sat.", "A dog ran.", "neutral")),
        "dev_matched.tsv": _tsv(MNLI_DEV_HEADER, _mnli_row(0, "It is red.", "It is big.", "contradiction", dev=True)),
        "dev_mismatched.tsv": _tsv(MNLI_DEV_HEADER, _mnli_row(0, "A mat.", "The mat.", "entailment", dev=True)),
        "test_matched.tsv": _tsv(MNLI_TEST_HEADER, _mnli_row(0, "A cat.", "A dog.")),
        "test_mismatched.tsv": _tsv(MNLI_TEST_HEADER, _mnli_row(0, "A dog.", "A cat.")),
        "diagnostic.tsv": _tsv(("index", "sentence1", "sentence2"), ("0", "The cat.", "The dog.")),
    },
    "qnli": {
        "train.tsv": _tsv(("index", "question", "sentence", "label"), ("0", "Is it red?", "It is red.", "entailment"),
                          ("1", "Is it big?", "A dog ran.", "not_entailment")),
        "dev.tsv": _tsv(("index", "question", "sentence", "label"), ("0", "Red?", "Red.", "entailment")),
        "test.tsv": _tsv(("index", "question", "sentence"), ("0", "Big?", "Big.")),
    },
    "rte": {
        "train.tsv": _tsv(("index", "sentence1", "sentence2", "label"), ("0", "A cat sat.", "A cat.", "entailment")),
        "dev.tsv": _tsv(("index", "sentence1", "sentence2", "label"), ("0", "A dog.", "A cat.", "not_entailment")),
        "test.tsv": _tsv(("index", "sentence1", "sentence2"), ("0", "A.", "B.")),
    },
    "wnli": {
        "train.tsv": _tsv(("index", "sentence1", "sentence2", "label"), ("0", "The cat sat.", "It sat.", "1")),
        "dev.tsv": _tsv(("index", "sentence1", "sentence2", "label"), ("0", "The cat sat.", "The mat sat.", "0")),
        "test.tsv": _tsv(("index", "sentence1", "sentence2"), ("0", "A.", "B.")),
    },
}

# (task, split) -> (number of examples, first example's text_a, text_b, label, guid).
EXPECTED_FIRST = {
    ("cola", "train"): (2, "The cat sat.", None, "1", "train-1"),
    ("cola", "dev"): (2, "A dog ran.", None, "1", "dev-1"),
    ("cola", "test"): (2, "The mat.", None, None, "0"),
    ("sst", "train"): (2, "the big cat ", None, "1", "train-2"),
    ("sst", "test"): (2, "the cat .", None, None, "0"),
    ("mrpc", "train"): (4, "The cat sat.", "A cat sat.", "1", "train-2"),
    ("mrpc", "dev"): (1, "It is red.", "It is red.", "1", "dev-2"),
    ("mrpc", "test"): (1, "A dog.", "A cat.", None, "0"),
    ("sts", "train"): (4, "A cat sat.", "The cat sat.", 5.0, "train-2"),
    ("sts", "dev"): (1, "A red dog.", "A big dog.", 2.5, "dev-2"),
    ("sts", "test"): (1, "A cat.", "A dog.", None, "0"),
    ("qqp", "train"): (2, "Is it red?", "Is it big?", "0", "train-2"),
    ("qqp", "test"): (1, "Is it a cat?", "Is it a dog?", None, "0"),
    ("mnli", "train"): (2, "The cat sat.", "A cat sat.", "entailment", "train-2"),
    ("mnli", "dev"): (1, "It is red.", "It is big.", "contradiction", "dev-2"),
    ("mnli", "dev_mismatched"): (1, "A mat.", "The mat.", "entailment", "dev_mismatched-2"),
    ("mnli", "test"): (1, "A cat.", "A dog.", None, "0"),
    ("mnli", "test_mismatched"): (1, "A dog.", "A cat.", None, "0"),
    ("mnli", "diagnostic"): (1, "The cat.", "The dog.", None, "0"),
    ("qnli", "train"): (2, "Is it red?", "It is red.", "entailment", "train-2"),
    ("qnli", "test"): (1, "Big?", "Big.", None, "0"),
    ("rte", "dev"): (1, "A dog.", "A cat.", "not_entailment", "dev-2"),
    ("wnli", "train"): (1, "The cat sat.", "It sat.", "1", "train-2"),
    ("wnli", "dev"): (1, "The cat sat.", "The mat sat.", "0", "dev-2"),
}


@pytest.fixture(scope="module")
def glue_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    for task, files in GLUE_FILES.items():
        directory = root / "finetuning_data" / task
        directory.mkdir(parents=True)
        for name, content in files.items():
            (directory / name).write_text(content)
    return str(root)




# ----------------------------------------------------------------------------------------------
# Registry.


def test_registry_has_the_original_task_names_and_kinds():
    assert list(TASKS) == ["cola", "sst", "mrpc", "sts", "qqp", "mnli", "qnli", "rte", "wnli", "squadv1",
                                 "squad", "newsqa", "naturalqs", "triviaqa", "searchqa", "chunk"]
    assert get_task("sts").kind == "regression" and get_task("sts").label_list is None
    assert get_task("mnli").label_list == ("contradiction", "entailment", "neutral")
    assert get_task("rte").label_list == ("entailment", "not_entailment")
    assert get_task("wnli").label_list == ("0", "1")
    assert get_task("squad").kind == "qa" and get_task("squad").version_2 and not get_task("squadv1").version_2
    chunk = get_task("chunk")
    assert chunk.kind == "tagging" and len(chunk.label_list) == 45 and chunk.label_list[0] == "O"
    assert get_task("mnli").splits() == ("train", "dev", "dev_mismatched", "test", "test_mismatched", "diagnostic")
    assert get_task("mnli").test_splits() == ("test", "test_mismatched", "diagnostic")


def test_unknown_task_lists_the_known_names():
    with pytest.raises(ValueError, match="unknown task 'glue'.*cola, sst, mrpc.*searchqa, chunk"):
        get_task("glue")


def test_unknown_split(glue_dir):
    with pytest.raises(ValueError, match="no split 'validation'.*train, dev, test"):
        get_task("rte").read_examples(glue_dir, "validation")


# ----------------------------------------------------------------------------------------------
# GLUE reading.


@pytest.mark.parametrize("task_name, split", sorted(EXPECTED_FIRST))
def test_glue_layouts(glue_dir, task_name, split):
    stats = DataStats()
    examples = get_task(task_name).read_examples(glue_dir, split, stats=stats)
    count, text_a, text_b, label, guid = EXPECTED_FIRST[(task_name, split)]
    assert len(examples) == count
    first = examples[0]
    assert (first.text_a, first.text_b, first.label, first.guid) == (text_a, text_b, label, guid)
    assert [e.example_index for e in examples] == list(range(count))
    assert all(e.split == split and e.task == task_name for e in examples)
    assert stats.examples == count
    assert stats.lines == stats.header_lines + stats.blank_lines + stats.skipped + (count - stats.doubled)


def test_every_glue_split_reads(glue_dir):
    for name, files in GLUE_FILES.items():
        task = get_task(name)
        for split in task.splits():
            examples = task.read_examples(glue_dir, split)
            assert examples, (name, split)
            assert all((e.label is None) == (split in task.test_splits()) for e in examples)


def test_mrpc_and_sts_train_doubled_with_swapped_order(glue_dir):
    for name in ("mrpc", "sts"):
        task = get_task(name)
        stats = DataStats()
        doubled = task.read_examples(glue_dir, "train", stats=stats)
        single = task.read_examples(glue_dir, "train", double_unordered=False)
        assert len(doubled) == 2 * len(single) == 4 and stats.doubled == 2
        for original, swapped in zip(doubled[:2], doubled[2:]):
            assert (swapped.text_a, swapped.text_b, swapped.label) == (original.text_b, original.text_a, original.label)
            assert swapped.guid == original.guid + "-swapped"
        assert [e.example_index for e in doubled] == [0, 1, 2, 3]
        assert len(task.read_examples(glue_dir, "dev")) == 1  # only train is doubled
    assert len(get_task("qqp").read_examples(glue_dir, "train")) == 2  # qqp is not doubled


def test_blank_lines_are_counted(tmp_path):
    data = str(tmp_path)
    write_task_file(data, "rte", "train.tsv",
                    _tsv(("index", "sentence1", "sentence2", "label"), ("0", "a", "b", "entailment"))
                    + "\n\r\n" + _tsv(("1", "c", "d", "not_entailment")))
    stats = DataStats()
    assert len(get_task("rte").read_examples(data, "train", stats=stats)) == 2
    assert stats.blank_lines == 2 and stats.lines == 5


@pytest.mark.parametrize("task_name, content, line, message", [
    ("rte", _tsv(("index", "sentence1", "sentence2", "label"), ("0", "a", "b", "entailment"), ("1", "a", "b")),
     3, "3 tab-separated columns, expected 4"),
    ("rte", _tsv(("index", "sentence1", "sentence2", "label"), ("0", "a", "b", "entailed")),
     2, "label 'entailed' is not one of entailment, not_entailment"),
    ("cola", _tsv(("gj04", "1", "", "ok"), ("gj04", "1", "ok")), 2, "3 tab-separated columns, expected 4"),
    ("cola", _tsv(("gj04", "yes", "", "ok")), 1, "label 'yes' is not one of 0, 1"),
    ("sts", _tsv(STS_HEADER + ("score",), ("0",) * 7 + ("a", "b", "high")), 2, "label 'high' is not a number"),
    ("sts", _tsv(STS_HEADER + ("score",), ("0",) * 7 + ("a", "b", "7.5")), 2, "outside the similarity range"),
    ("mnli", _tsv(("index", "sentence1"), ("0", "a")), 1, "the header has 2 columns"),
])
def test_bad_rows_name_file_and_line(tmp_path, task_name, content, line, message):
    data = str(tmp_path)
    path = write_task_file(data, task_name, "train.tsv", content)
    with pytest.raises(DataError, match=rf"{path}:{line}: .*{message}"):
        get_task(task_name).read_examples(data, "train")


def test_skip_bad_rows_counts_them(tmp_path):
    data = str(tmp_path)
    write_task_file(data, "qnli", "train.tsv",
                    _tsv(("index", "question", "sentence", "label"), ("0", "a", "b", "entailment"),
                         ("1", "a", "b"), ("2", "a", "b", "maybe"), ("3", "c", "d", "entailment")))
    stats = DataStats()
    examples = get_task("qnli").read_examples(data, "train", skip_bad_rows=True, stats=stats)
    assert [e.guid for e in examples] == ["train-2", "train-5"]
    assert stats.skipped == 2 and len(stats.problems) == 2 and ":3" in stats.problems[0]


def test_not_utf8_names_the_line(tmp_path):
    data = str(tmp_path)
    path = write_task_file(data, "sst", "dev.tsv", b"sentence\tlabel\nok\t1\n\xff\xfe\t0\n")
    with pytest.raises(DataError, match=rf"{path}:3: not valid UTF-8"):
        get_task("sst").read_examples(data, "dev")


def test_missing_split_file_names_path_and_fix(tmp_path):
    with pytest.raises(DataError, match=r"finetuning_data/rte/dev.tsv does not exist.*download_glue_data.*"
                                        r"tfds_data_dir"):
        get_task("rte").read_examples(str(tmp_path), "dev")
    with pytest.raises(DataError, match=r"diagnostic.tsv does not exist.*Move GLUE's diagnostic/diagnostic.tsv"):
        get_task("mnli").read_examples(str(tmp_path), "diagnostic")
    with pytest.raises(DataError, match=r"squad/dev.json does not exist.*SQuAD 2.0"):
        get_task("squad").read_examples(str(tmp_path), "dev")
    with pytest.raises(DataError, match=r"chunk/test.txt does not exist"):
        get_task("chunk").read_examples(str(tmp_path), "test")


# ----------------------------------------------------------------------------------------------
# TFDS (a fake builder stands in for a prepared dataset: nothing is downloaded).


class _FakeSplits(dict):
    pass


class _FakeBuilder:
    def __init__(self, records, label_names, split, prepared=True):
        self.records, self.prepared = records, prepared
        label = type("Label", (), {"names": label_names})()
        self.info = type("Info", (), {"splits": _FakeSplits({split: None}), "features": {"label": label}})()

    def is_prepared(self):
        return self.prepared

    def as_dataset(self, split, shuffle_files=False):
        columns = {key: [r[key] for r in self.records] for key in self.records[0]}
        return tf.data.Dataset.from_tensor_slices(columns)


def test_tfds_glue_labels_by_name(monkeypatch, tmp_path):
    import tensorflow_datasets as tfds

    calls = []
    records = [{"premise": b"A cat.", "hypothesis": b"A dog.", "label": 2, "idx": 0},
               {"premise": b"It is.", "hypothesis": b"It is.", "label": 0, "idx": 1}]

    def builder(name, data_dir):
        calls.append((name, data_dir))
        return _FakeBuilder(records, ["entailment", "neutral", "contradiction"], "validation_mismatched")

    monkeypatch.setattr(tfds, "builder", builder)
    examples = get_task("mnli").read_examples(str(tmp_path), "dev_mismatched", tfds_data_dir="/tfds")
    assert calls == [("glue/mnli", "/tfds")]
    assert [(e.text_a, e.text_b, e.label) for e in examples] == [("A cat.", "A dog.", "contradiction"),
                                                                  ("It is.", "It is.", "entailment")]


def test_tfds_glue_wnli_and_test_labels(monkeypatch, tmp_path):
    import tensorflow_datasets as tfds

    records = [{"sentence1": b"a", "sentence2": b"b", "label": 1, "idx": 0}]
    monkeypatch.setattr(tfds, "builder", lambda name, data_dir: _FakeBuilder(
        records, ["not_entailment", "entailment"], "train"))
    assert get_task("wnli").read_examples(str(tmp_path), "train", tfds_data_dir="/tfds")[0].label == "1"
    records = [{"sentence1": b"a", "sentence2": b"b", "label": -1, "idx": 7}]
    monkeypatch.setattr(tfds, "builder", lambda name, data_dir: _FakeBuilder(records, ["e", "n"], "test"))
    test = get_task("rte").read_examples(str(tmp_path), "test", tfds_data_dir="/tfds")
    assert (test[0].label, test[0].guid) == (None, "7")


def test_tfds_not_prepared_falls_back_to_files(monkeypatch, glue_dir):
    import tensorflow_datasets as tfds

    monkeypatch.setattr(tfds, "builder", lambda name, data_dir: _FakeBuilder([{}], ["a"], "train", prepared=False))
    examples = get_task("rte").read_examples(glue_dir, "train", tfds_data_dir="/nowhere")
    assert examples[0].text_a == "A cat sat."


# ----------------------------------------------------------------------------------------------
# Featurization.


def test_featurize_pair_token_by_token(glue_dir, tokenizer):
    task = get_task("mrpc")
    examples = task.read_examples(glue_dir, "train")[:1]  # "The cat sat." / "A cat sat."
    stats = DataStats()
    (feature,) = task.featurize(examples, tokenizer, 12, is_training=True, stats=stats)
    expected = [CLS, ID["the"], ID["cat"], ID["sat"], ID["."], SEP, ID["a"], ID["cat"], ID["sat"], ID["."], SEP, PAD]
    assert list(feature.input_ids) == expected
    assert list(feature.segment_ids) == [0] * 6 + [1] * 5 + [0]
    assert list(feature.input_mask) == [1] * 11 + [0]
    assert (feature.label_id, feature.eid, feature.example_index) == (1, 0, 0)
    assert stats.truncated == 0 and stats.features == 1


def test_featurize_single_sentence_token_by_token(glue_dir, tokenizer):
    task = get_task("cola")
    examples = task.read_examples(glue_dir, "train")  # "The cat sat." (1), "Cat the sat." (0)
    features = task.featurize(examples, tokenizer, 8, is_training=True)
    assert list(features[0].input_ids) == [CLS, ID["the"], ID["cat"], ID["sat"], ID["."], SEP, PAD, PAD]
    assert list(features[0].segment_ids) == [0] * 8
    assert list(features[0].input_mask) == [1] * 6 + [0, 0]
    assert [f.label_id for f in features] == [1, 0]
    # Unknown words become [UNK]; "cats" is "cat ##s".
    example = Example("cola", "dev", 0, "x", "Cats purr", None, "1")
    (feature,) = task.featurize([example], tokenizer, 6, is_training=False)
    assert list(feature.input_ids) == [CLS, ID["cat"], ID["##s"], ID["[UNK]"], SEP, PAD]


def _pair(a, b, label="entailment"):
    return Example("rte", "train", 0, "t", a, b, label)


def test_pair_truncation_longest_first(tokenizer):
    task = get_task("rte")
    stats = DataStats()
    # a: 5 tokens, b: 2; budget 10 - 3 = 7 -> fits.
    (feature,) = task.featurize([_pair("the big red cat sat", "a dog")], tokenizer, 10, True, stats=stats)
    assert stats.truncated == 0
    # budget 8 - 3 = 5: drop from the longer a until 3 + 2.
    (feature,) = task.featurize([_pair("the big red cat sat", "a dog")], tokenizer, 8, True, stats=stats)
    assert list(feature.input_ids) == [CLS, ID["the"], ID["big"], ID["red"], SEP, ID["a"], ID["dog"], SEP]
    # Equal lengths: the token comes off b. budget 7 - 3 = 4 from 3 + 3: a 3 > b 3? no -> b to 2;
    # then 3 > 2 -> a to 2.
    (feature,) = task.featurize([_pair("the big cat", "a red dog")], tokenizer, 7, True, stats=stats)
    assert list(feature.input_ids) == [CLS, ID["the"], ID["big"], SEP, ID["a"], ID["red"], SEP]
    (feature,) = task.featurize([_pair("the big cat", "a red dog")], tokenizer, 8, True, stats=stats)
    assert list(feature.input_ids) == [CLS, ID["the"], ID["big"], ID["cat"], SEP, ID["a"], ID["red"], SEP]
    assert list(feature.segment_ids) == [0, 0, 0, 0, 0, 1, 1, 1]
    assert stats.truncated == 3


def test_single_truncation(tokenizer):
    stats = DataStats()
    example = Example("sst", "train", 0, "t", "the big red cat sat on a mat", None, "1")
    (feature,) = get_task("sst").featurize([example], tokenizer, 5, True, stats=stats)
    assert list(feature.input_ids) == [CLS, ID["the"], ID["big"], ID["red"], SEP]
    assert stats.truncated == 1


def test_sts_targets_scaled_and_predictions_rescaled(glue_dir, tokenizer):
    task = get_task("sts")
    examples = task.read_examples(glue_dir, "train", double_unordered=False)  # labels 5.0, 0.5
    features = task.featurize(examples, tokenizer, 16, True)
    assert [f.label_value for f in features] == pytest.approx([1.0, 0.1])
    predictions = task.postprocess(examples, features, {"logits": np.array([[0.9], [0.1]])})
    assert predictions == pytest.approx([4.5, 0.5])
    assert task.score(examples, predictions)["mse"] == pytest.approx((0.25 + 0.0) / 2)


def test_training_needs_labels(glue_dir, tokenizer):
    task = get_task("rte")
    examples = task.read_examples(glue_dir, "test")
    with pytest.raises(ValueError, match="has no label"):
        task.featurize(examples, tokenizer, 16, is_training=True)
    assert task.featurize(examples, tokenizer, 16, is_training=False)[0].label_id == 0


def test_classification_postprocess_and_score(glue_dir, tokenizer):
    task = get_task("mnli")
    examples = task.read_examples(glue_dir, "train")  # entailment, neutral
    features = task.featurize(examples, tokenizer, 16, True)
    predictions = task.postprocess(examples, features, {"logits": np.array([[0.0, 2.0, 1.0], [3.0, 0.0, 1.0]])})
    assert predictions == ["entailment", "contradiction"]
    assert task.score(examples, predictions) == {"accuracy": 50.0}


def test_model_inputs_carry_every_label_key(glue_dir, tokenizer):
    task = get_task("cola")
    features = task.featurize(task.read_examples(glue_dir, "train"), tokenizer, 8, True)
    batch = stack_model_inputs(features, task_id=3)
    assert set(batch) == {"input_ids", "input_mask", "segment_ids", "task_id", "label_ids", "label_value",
                          "start_positions", "end_positions", "is_impossible", "tag_ids", "tag_weights"}
    assert batch["input_ids"].shape == (2, 8) and batch["input_ids"].dtype == np.int32
    assert batch["tag_weights"].shape == (2, 8) and not batch["tag_weights"].any()
    assert list(batch["task_id"]) == [3, 3] and list(batch["label_ids"]) == [1, 0]


# ----------------------------------------------------------------------------------------------
# Output files.


def test_glue_submission_files(tmp_path, glue_dir):
    mnli = get_task("mnli")
    for split, name in (("test", "MNLI-m.tsv"), ("test_mismatched", "MNLI-mm.tsv"), ("diagnostic", "AX.tsv")):
        examples = mnli.read_examples(glue_dir, split)
        path = mnli.write_test_predictions(tmp_path, split, examples, ["neutral"])
        assert os.path.basename(path) == name
        assert open(path).read() == "index\tprediction\n0\tneutral\n"
    sts = get_task("sts")
    examples = [Example("sts", "test", i, str(i), "a", "b", None) for i in range(3)]
    path = sts.write_test_predictions(tmp_path, "test", examples, [5.7, -0.2, 2.25])
    assert os.path.basename(path) == "STS-B.tsv"
    assert open(path).read() == "index\tprediction\n0\t5.000\n1\t0.000\n2\t2.250\n"
    cola = get_task("cola")
    path = cola.write_test_predictions(tmp_path, "test", cola.read_examples(glue_dir, "test"), ["1", 0])
    assert os.path.basename(path) == "CoLA.tsv" and open(path).read() == "index\tprediction\n0\t1\n1\t0\n"
    names = {get_task(t).submission_filename("test") for t in ("sst", "mrpc", "qqp", "qnli", "rte", "wnli")}
    assert names == {"SST-2.tsv", "MRPC.tsv", "QQP.tsv", "QNLI.tsv", "RTE.tsv", "WNLI.tsv"}
    with pytest.raises(ValueError, match="no GLUE submission file for task 'rte' split 'dev'"):
        get_task("rte").submission_filename("dev")
    with pytest.raises(ValueError, match="not one of"):
        get_task("rte").write_test_predictions(tmp_path, "test", examples[:1], ["maybe"])
    assert not [f for f in os.listdir(tmp_path) if f.endswith(".tmp") or is_temporary(f)]


def test_dev_predictions_json(tmp_path, glue_dir):
    task = get_task("rte")
    examples = task.read_examples(glue_dir, "dev")
    path = task.write_predictions(tmp_path, "dev", examples, ["entailment"])
    assert path == str(tmp_path / "rte_dev.json")
    content = json.load(open(path))
    assert content == {"task": "rte", "split": "dev",
                       "predictions": [{"guid": "dev-2", "prediction": "entailment", "label": "not_entailment"}]}


# ----------------------------------------------------------------------------------------------
# Fuzz: hostile text never raises anything but DataError, and never loses a line uncounted.

# Rows of the right width with labels valid for some of the tasks, and hostile ones mixed in.
_FIELD = st.sampled_from(["", "a b", "x\x00y", "\ufeffé", "nan", "B-NP", "\u2028"]) | st.text(max_size=4)
_LABEL = st.sampled_from(["0", "1", "entailment", "not_entailment", "3.5", "-1", "yes"])
_ROW = st.tuples(_FIELD, _LABEL, _FIELD, _LABEL).map("\t".join) | st.lists(_FIELD, max_size=6).map("\t".join)
_TSV = st.tuples(st.lists(_ROW, max_size=8), st.sampled_from(["\n", "\r\n"])).map(
    lambda rows_end: rows_end[1].join(rows_end[0]))


@FUZZ
@given(text=_TSV | RAW_TEXT, skip=st.booleans(), task_name=st.sampled_from(["rte", "cola", "sts", "wnli"]))
def test_fuzz_glue_reader(text, skip, task_name):
    with tempfile.TemporaryDirectory() as data:
        write_task_file(data, task_name, "train.tsv", text.encode("utf-8"))
        stats = DataStats()
        try:
            examples = get_task(task_name).read_examples(data, "train", skip_bad_rows=skip, stats=stats)
        except DataError:
            return
        kept = len(examples) - stats.doubled
        assert stats.lines == stats.header_lines + stats.blank_lines + stats.skipped + kept


@FUZZ
@given(data=st.binary(max_size=60))
def test_fuzz_glue_reader_bytes(data):
    with tempfile.TemporaryDirectory() as root:
        write_task_file(root, "sst", "dev.tsv", b"sentence\tlabel\n" + data)
        try:
            get_task("sst").read_examples(root, "dev", skip_bad_rows=True)
        except DataError:
            pass
