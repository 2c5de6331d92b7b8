"""CoNLL-2000 chunking: reading (IOB to BIOES), first-sub-token featurization, predictions and scores."""
import tempfile

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from convbert_tf.finetuning.examples import DataError, DataStats, TaggingExample
from convbert_tf.finetuning.tasks.registry import get_task
from finetuning_data import FUZZ, RAW_TEXT, WORD_VOCAB, word_tokenizer, write_task_file

ID = {token: index for index, token in enumerate(WORD_VOCAB)}
PAD, CLS, SEP = ID["[PAD]"], ID["[CLS]"], ID["[SEP]"]


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory):
    return word_tokenizer(tmp_path_factory.mktemp("vocab"))


CONLL = """-DOCSTART- -X- O O

The DT B-NP
big JJ I-NP
cat NN I-NP
sat VBD B-VP
. . O

a DT B-NP
dog NN I-NP
"""


def test_conll_reading_converts_to_bioes(tmp_path):
    data = str(tmp_path)
    write_task_file(data, "chunk", "train.txt", CONLL)
    stats = DataStats()
    examples = get_task("chunk").read_examples(data, "train", stats=stats)
    assert [e.words for e in examples] == [("The", "big", "cat", "sat", "."), ("a", "dog")]
    assert examples[0].tags == ("B-NP", "I-NP", "E-NP", "S-VP", "O")
    assert examples[1].tags == ("B-NP", "E-NP")
    assert (stats.docstart_lines, stats.blank_lines, stats.lines) == (1, 2, 10)
    assert stats.lines == stats.docstart_lines + stats.blank_lines + stats.skipped + 7


def test_conll_bad_tag_names_line(tmp_path):
    data = str(tmp_path)
    path = write_task_file(data, "chunk", "dev.txt", "The DT B-NP\ncat NN B-XYZ\n\n")
    with pytest.raises(DataError, match=rf"{path}:2: tag 'B-XYZ'"):
        get_task("chunk").read_examples(data, "dev")
    write_task_file(data, "chunk", "dev.txt", "The DT B-NP\ncat NN B-XYZ\ndog NN I-NP\n\na DT B-NP\n")
    stats = DataStats()
    examples = get_task("chunk").read_examples(data, "dev", skip_bad_rows=True, stats=stats)
    assert [e.words for e in examples] == [("a",)] and stats.skipped == 3


def test_chunk_featurize_first_subtoken_and_truncation(tokenizer):
    task = get_task("chunk")
    example = TaggingExample("chunk", "dev", 0, "dev-1", ("The", "cats", "sat"), ("B-NP", "E-NP", "S-VP"))
    stats = DataStats()
    (feature,) = task.featurize([example], tokenizer, 8, is_training=True, stats=stats)
    assert list(feature.input_ids) == [CLS, ID["the"], ID["cat"], ID["##s"], ID["sat"], SEP, PAD, PAD]
    label = task.label_list.index
    assert list(feature.tag_ids) == [0, label("B-NP"), label("E-NP"), 0, label("S-VP"), 0, 0, 0]
    assert list(feature.tag_weights) == [0, 1, 1, 0, 1, 0, 0, 0]
    assert feature.word_positions == (1, 2, 4)
    (short,) = task.featurize([example], tokenizer, 5, is_training=True, stats=stats)
    assert list(short.input_ids) == [CLS, ID["the"], ID["cat"], ID["##s"], SEP]
    assert short.word_positions == (1, 2, -1) and stats.truncated == 1
    logits = np.zeros((1, 5, len(task.label_list)))
    logits[0, 1, label("S-NP")] = logits[0, 2, label("S-NP")] = 1.0
    predictions = task.postprocess([example], [short], {"logits": logits})
    assert predictions == [["S-NP", "S-NP", "O"]]
    assert task.score([example], predictions) == pytest.approx({"f1": 0.0, "precision": 0.0, "recall": 0.0})


# Fuzz: hostile text never raises anything but DataError, and never loses a line uncounted.

_WORD = st.sampled_from(["The", "cat", "é", "\x00", "", "-DOCSTART-"]) | st.text(max_size=3)
_TAG = st.sampled_from(["B-NP", "I-NP", "E-VP", "S-PP", "O", "B-XX", "NP"])
_LINE = st.tuples(_WORD, _WORD, _TAG).map(" ".join) | st.lists(_WORD | _TAG, max_size=4).map(" ".join)
_CONLL = st.lists(_LINE, max_size=12).map("\n".join)


@FUZZ
@given(text=_CONLL | RAW_TEXT, skip=st.booleans())
def test_fuzz_conll_reader(text, skip):
    with tempfile.TemporaryDirectory() as data:
        write_task_file(data, "chunk", "train.txt", text.encode("utf-8"))
        stats = DataStats()
        try:
            examples = get_task("chunk").read_examples(data, "train", skip_bad_rows=skip, stats=stats)
        except DataError:
            return
        words = sum(len(e.words) for e in examples)
        assert stats.lines == stats.blank_lines + stats.docstart_lines + stats.skipped + words
        for example in examples:
            assert len(example.tags) == len(example.words)
