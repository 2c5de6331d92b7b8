"""What every fine-tuning task reads and makes: examples, model-input features, data errors and counts.

`Example` (GLUE), `QAExample` (extractive QA) and `TaggingExample` (chunking) are what a task's
`read_examples` returns; `Feature` / `QAFeature` are the padded model rows its `featurize` makes;
`DataStats` counts every line dropped or changed on the way; `DataError` is bad input naming its
file and line. Also the small file, TFDS and padding helpers the readers share.

May be imported by any module of `convbert_tf.finetuning`; imports nothing of it.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from typing import Mapping, Sequence

import numpy as np

logger = logging.getLogger(__name__)


class DataError(ValueError):
    """Input data that cannot be used: says which file (and line, or question id) and what is wrong."""


class BadRecord(Exception):
    """What is wrong with one record; the reader turns it into a DataError or a counted skip."""


@dataclasses.dataclass
class DataStats:
    """What reading and featurizing one split did; every input line dropped or changed is counted.

    Reading: for GLUE and CoNLL files `lines` = header_lines + blank_lines + docstart_lines +
    skipped + (the lines that became examples: GLUE rows before doubling, CoNLL word lines); for
    QA `questions` = skipped + examples.
    """

    lines: int = 0  # lines of TSV, CoNLL and jsonl files; records of TFDS GLUE
    questions: int = 0  # QA questions seen (JSON, jsonl or TFDS); = examples + skipped
    header_lines: int = 0
    blank_lines: int = 0
    docstart_lines: int = 0  # CoNLL "-DOCSTART-" lines
    skipped: int = 0  # records dropped by skip_bad_rows / skip_bad_answers
    examples: int = 0  # examples returned (doubled ones included)
    doubled: int = 0  # the swapped copies of MRPC / STS train pairs
    unchecked_answers: int = 0  # QA dev answers whose answer_start does not match (kept as gold text)
    features: int = 0
    truncated: int = 0  # examples that lost tokens to max_seq_length (QA: questions cut to max_query_length)
    multi_span: int = 0  # QA examples split into more than one doc span
    answers_out_of_span: int = 0  # QA training features whose span misses the answer (label 0)
    answers_without_tokens: int = 0  # QA training answers whose text tokenizes to nothing (label 0)
    words_without_tokens: int = 0  # tagging words whose text tokenizes to nothing
    problems: list = dataclasses.field(default_factory=list)  # "where: what" for the first skipped records

    MAX_PROBLEMS = 20

    def skip(self, where: str, what: str):
        self.skipped += 1
        if len(self.problems) < self.MAX_PROBLEMS:
            self.problems.append(f"{where}: {what}")


@dataclasses.dataclass(frozen=True)
class Example:
    """One text or text pair of a GLUE task.

    Attributes:
      task, split: where it came from.
      example_index: position in the list `read_examples` returned (the feature's eid).
      guid: "<split>-<line>" (its line number in the file, or its TFDS idx); on test splits the
        file's index column, which is what the GLUE server matches submissions on. Swapped copies
        end "-swapped".
      text_a, text_b: the texts (text_b None for single-sentence tasks).
      label: a name from the task's label_list (classification), a float in [0, 5] (sts), or None
        on unlabelled test splits.
    """

    task: str
    split: str
    example_index: int
    guid: str
    text_a: str
    text_b: str | None
    label: str | float | None


@dataclasses.dataclass(frozen=True)
class QAExample:
    """One question of an extractive QA task.

    Attributes:
      qid: the question id (the key of every prediction file).
      question, context: the texts.
      doc_words: the context split at whitespace (`str.isspace`); word_starts: each word's first
        character offset in `context`.
      answers: every gold answer text (empty for an unanswerable SQuAD 2.0 question).
      answer_text, answer_start: the training answer (the first gold answer; MRQA: the first
        detected span) and its character offset in context; "" and -1 when there is none or its
        offset is unusable.
      is_impossible: SQuAD 2.0's flag.
    """

    task: str
    split: str
    example_index: int
    qid: str
    question: str
    context: str
    doc_words: tuple
    word_starts: tuple
    answers: tuple
    answer_text: str
    answer_start: int
    is_impossible: bool


@dataclasses.dataclass(frozen=True)
class TaggingExample:
    """One sentence of a tagging task: its words and their BIOES tags (converted from IOB)."""

    task: str
    split: str
    example_index: int
    guid: str
    words: tuple
    tags: tuple



@dataclasses.dataclass(frozen=True)
class Feature:
    """One model input row, padded to max_seq_length T.

    Attributes:
      eid: the feature id: example_index for classification and tagging; for QA
        1000·example_index + span_index (the original's eid).
      example_index: the example it came from.
      input_ids, input_mask, segment_ids: [T] each.
      label_id: classification label index (0 when unlabelled).
      label_value: regression target (STS: y/5; 0 when unlabelled).
      tag_ids, tag_weights: tagging, [T]: each word's tag id at its first sub-token, weight 1 there
        and 0 elsewhere; None for other kinds.
      word_positions: tagging, one per word: the position of its first sub-token, −1 if the word
        was truncated away or has no tokens.
    """

    eid: int
    example_index: int
    input_ids: tuple
    input_mask: tuple
    segment_ids: tuple
    label_id: int = 0
    label_value: float = 0.0
    tag_ids: tuple | None = None
    tag_weights: tuple | None = None
    word_positions: tuple | None = None

    def model_inputs(self, task_id: int = 0) -> dict[str, np.ndarray]:
        """The arrays the fine-tuning model reads: inputs, `task_id` and every label key (zeros for
        the labels this kind does not use), so features of different tasks batch together."""
        length = len(self.input_ids)
        start, end, impossible = (getattr(self, "start_position", 0), getattr(self, "end_position", 0),
                                  getattr(self, "is_impossible", 0.0))
        return {
            "input_ids": np.asarray(self.input_ids, np.int32),
            "input_mask": np.asarray(self.input_mask, np.int32),
            "segment_ids": np.asarray(self.segment_ids, np.int32),
            "task_id": np.int32(task_id),
            "label_ids": np.int32(self.label_id),
            "label_value": np.float32(self.label_value),
            "start_positions": np.int32(start),
            "end_positions": np.int32(end),
            "is_impossible": np.float32(impossible),
            "tag_ids": np.asarray(self.tag_ids if self.tag_ids is not None else [0] * length, np.int32),
            "tag_weights": np.asarray(self.tag_weights if self.tag_weights is not None else [0.0] * length,
                                      np.float32),
        }


@dataclasses.dataclass(frozen=True)
class QAFeature(Feature):
    """One doc span of a QA example: `[CLS] question [SEP] span [SEP]`.

    Attributes (beyond Feature's):
      span_index: which span of its example (eid = 1000·example_index + span_index).
      start_position, end_position: answer sub-token positions in this row for training; 0
        ([CLS]) when unanswerable, when the answer is outside this span, or when not training.
      is_impossible: 1.0 when the *example* is unanswerable (as the original: an answerable
        example's out-of-span rows keep 0.0).
      token_to_orig_map: row position → index in the example's doc_words, for span tokens.
      token_is_max_context: row position → whether this span gives that token its most context
        (min of left and right context, +0.01·span length); predictions start only there.
      token_char_spans: row position → (start, end) character offsets in the context of that
        sub-token's text (its whole word's when the sub-token cannot be aligned).
    """

    span_index: int = 0
    start_position: int = 0
    end_position: int = 0
    is_impossible: float = 0.0
    token_to_orig_map: Mapping[int, int] = dataclasses.field(default_factory=dict)
    token_is_max_context: Mapping[int, bool] = dataclasses.field(default_factory=dict)
    token_char_spans: Mapping[int, tuple] = dataclasses.field(default_factory=dict)


def stack_model_inputs(features: Sequence[Feature], task_id: int = 0) -> dict[str, np.ndarray]:
    """`Feature.model_inputs` of every feature, stacked: each value [N, ...]."""
    rows = [feature.model_inputs(task_id) for feature in features]
    if not rows:
        raise ValueError("no features to stack")
    return {key: np.stack([row[key] for row in rows]) for key in rows[0]}


# ----------------------------------------------------------------------------------------------
# Shared helpers.


def task_dir(data_dir, task_name: str) -> str:
    """`<data_dir>/finetuning_data/<task>`, where the original kept each task's raw files."""
    return os.path.join(os.fspath(data_dir), "finetuning_data", task_name)


def read_text_file(path: str, stats: DataStats | None = None) -> list[str]:
    """A UTF-8 file as its lines (split at "\\n", a trailing "\\r" dropped, a leading BOM dropped).

    Raises:
      DataError: the file is not valid UTF-8 (names the line).
    """
    with open(path, "rb") as f:
        data = f.read()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise DataError(f"{path}:{line}: not valid UTF-8 (byte {e.start}); GLUE, SQuAD and CoNLL files "
                        "are UTF-8") from None
    if text.startswith("\ufeff"):
        text = text[1:]
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def missing_file_error(path: str, task_name: str, what_to_do: str) -> DataError:
    """The DataError of a task file that is not there, saying what to put where."""
    return DataError(f"{path} does not exist (task {task_name}). {what_to_do}")


def truncate_pair(ids_a: list, ids_b: list, budget: int) -> bool:
    """Drops tokens from the end of the longer list (b on a tie) until both fit in `budget`."""
    truncated = False
    while len(ids_a) + len(ids_b) > budget:
        truncated = True
        if len(ids_a) > len(ids_b):
            ids_a.pop()
        else:
            ids_b.pop()
    return truncated


def pad_to(values: list, length: int, pad_value=0) -> tuple:
    """`values` as a tuple, padded with `pad_value` to `length`."""
    return tuple(values) + (pad_value,) * (length - len(values))


def check_max_seq_length(max_seq_length: int, minimum: int):
    """Raises ValueError when max_seq_length cannot hold the special tokens a layout needs."""
    if max_seq_length < minimum:
        raise ValueError(f"max_seq_length {max_seq_length} is too small: it must be at least {minimum}")


def tfds_builder_if_prepared(name: str, tfds_data_dir, split: str):
    """`tfds.builder(name, data_dir=tfds_data_dir)` if it is prepared there with `split`, else None."""
    import tensorflow_datasets as tfds  # slow to import; only needed on this path

    builder = tfds.builder(name, data_dir=os.fspath(tfds_data_dir))
    if not builder.is_prepared() or split not in builder.info.splits:
        logger.info("TFDS dataset %s (split %s) is not prepared in %s; reading the raw files", name, split,
                    tfds_data_dir)
        return None
    return builder


def tfds_records(builder, split: str):
    """The records of one split of a prepared TFDS builder, as NumPy values, in file order."""
    import tensorflow_datasets as tfds

    return tfds.as_numpy(builder.as_dataset(split=split, shuffle_files=False))


def as_text(value) -> str:
    """A TFDS string (bytes) as str."""
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)

