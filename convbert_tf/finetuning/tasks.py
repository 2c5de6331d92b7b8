"""The fine-tuning tasks of the original release: reading each one's files, featurizing, scoring.

Every task is looked up by the original's name with `get_task` (reference §5.1):

| name | kind | files under `<data_dir>/finetuning_data/<name>/` |
| --- | --- | --- |
| cola sst mrpc sts qqp qnli rte wnli | classification (sts: regression) | train.tsv dev.tsv test.tsv |
| mnli | classification | train.tsv dev_matched.tsv dev_mismatched.tsv test_matched.tsv test_mismatched.tsv |
| | | diagnostic.tsv (moved in from GLUE's diagnostic/) |
| squadv1 (1.1), squad (2.0) | qa | train.json dev.json |
| newsqa naturalqs triviaqa searchqa | qa (MRQA 2019) | train.jsonl dev.jsonl (or .jsonl.gz) |
| chunk | tagging (CoNLL-2000) | train.txt dev.txt test.txt |

GLUE and SQuAD can instead be read from TensorFlow Datasets (`glue/<config>`, `squad/v1.1`,
`squad/v2.0`) when `tfds_data_dir` is given and the dataset is already prepared there; nothing
is ever downloaded.

The pipeline, per task and split:

    examples = task.read_examples(data_dir, split)                     # list[Example]
    features = task.featurize(examples, tokenizer, max_seq_length, is_training)  # list[Feature]
    outputs  = {key: array [n_features, ...]}                           # the model's, in feature order
    predictions = task.postprocess(examples, features, outputs)
    metrics = task.score(examples, predictions)                         # {metric: value}

Input formatting (§5.2): `[CLS] a [SEP]` or `[CLS] a [SEP] b [SEP]`, segment ids 0 then 1. A pair
is truncated longest-first to max_seq_length − 3 (a token is dropped from the end of the longer
part; on a tie from b), a single text to max_seq_length − 2. Truncated examples are counted.

Decisions that differ from the original:

* STS targets are scaled to y/5 for training (as the original) and `postprocess` multiplies the
  model's outputs by 5 again, so predictions, metrics and test files are on the 0-5 scale. The
  original never rescaled (§9.17). Submission files clip to [0, 5]; metrics use unclipped values.
* A malformed row (wrong number of columns, unknown or non-numeric label) is a `DataError`
  naming file and line; the original logged it and silently dropped the row. `skip_bad_rows=True`
  skips such rows instead, and counts them in `DataStats`.
* `mnli` also reads `dev_mismatched` (the original's `dev` is dev_matched only).
* The chunk tag set is the fixed CoNLL-2000 one (O plus B/I/E/S of its 11 chunk types) rather
  than one collected from the files, so label ids never depend on which splits are present.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
from typing import Any, Mapping, Sequence

import numpy as np

from convbert_tf.finetuning import scorers

logger = logging.getLogger(__name__)

KINDS = ("classification", "regression", "qa", "tagging")


class DataError(ValueError):
    """Input data that cannot be used: says which file (and line, or question id) and what is wrong."""


class _BadRecord(Exception):
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


# The model's label inputs, under the names the fine-tuning model reads (one value per feature).
_LABEL_KEYS = ("label_ids", "label_value", "start_positions", "end_positions", "is_impossible",
               "tag_ids", "tag_weights")


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
    return DataError(f"{path} does not exist (task {task_name}). {what_to_do}")


def _truncate_pair(ids_a: list, ids_b: list, budget: int) -> bool:
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


def _check_max_seq_length(max_seq_length: int, minimum: int):
    if max_seq_length < minimum:
        raise ValueError(f"max_seq_length {max_seq_length} is too small: it must be at least {minimum}")


# ----------------------------------------------------------------------------------------------
# Task classes.


class Task:
    """A fine-tuning task: its name and kind, its splits, and how its data is read and scored.

    Attributes:
      name: the original's task name.
      kind: "classification", "regression", "qa" or "tagging".
      label_list: label names, id = position (classification, tagging); None otherwise.
    """

    name: str
    kind: str
    label_list: tuple | None = None

    def splits(self) -> tuple:
        """Every split name `read_examples` accepts."""
        raise NotImplementedError

    def test_splits(self) -> tuple:
        """The splits without labels (scored by a test server, not by `score`)."""
        return ()

    def read_examples(self, data_dir, split: str, *, tfds_data_dir=None, double_unordered: bool = True,
                      skip_bad_rows: bool = False, skip_bad_answers: bool = False,
                      stats: DataStats | None = None) -> list:
        """Reads one split.

        Args:
          data_dir: the original's data dir; files are under `<data_dir>/finetuning_data/<task>/`.
          split: one of `splits()`.
          tfds_data_dir: read GLUE / SQuAD from TensorFlow Datasets there instead, when the
            dataset is already prepared there (never downloads; falls back to the files if not).
          double_unordered: MRPC and STS train: append every pair again with a and b swapped
            (the original's default).
          skip_bad_rows: skip (and count) malformed rows (GLUE) or sentences (CoNLL) instead of
            raising DataError.
          skip_bad_answers: QA: skip (and count) questions whose training answer does not occur
            at its answer_start, or that have no answer, instead of raising DataError. For QA
            tasks either flag does this; malformed JSON structure is always an error.
          stats: a DataStats to fill in (a summary is also logged).

        Raises:
          DataError: a missing file, a malformed row or record (names file and line or id).
          ValueError: an unknown split.
        """
        raise NotImplementedError

    def featurize(self, examples: Sequence, tokenizer, max_seq_length: int, is_training: bool,
                  stats: DataStats | None = None, **qa_options) -> list:
        """Examples to padded `Feature`s (QA: `QAFeature`s, several per long example)."""
        raise NotImplementedError

    def postprocess(self, examples: Sequence, features: Sequence, outputs: Mapping[str, Any], **options):
        """The model's outputs (arrays [n_features, ...] in feature order) to per-example predictions:
        label names (classification), 0-5 floats (sts), a `qa.QAPredictions` (qa), BIOES tags per
        word (tagging)."""
        raise NotImplementedError

    def score(self, examples: Sequence, predictions) -> dict:
        """Metrics of one split's predictions (see `scorers.score_task`)."""
        return scorers.score_task(self, predictions, examples)

    def _check_split(self, split: str):
        if split not in self.splits():
            raise ValueError(f"task {self.name} has no split {split!r}; its splits are {', '.join(self.splits())}")

    def __repr__(self):
        return f"{type(self).__name__}({self.name!r}, kind={self.kind!r})"


@dataclasses.dataclass(frozen=True)
class TsvLayout:
    """Where one GLUE file keeps its fields (column indices may be negative, from the end).

    Attributes:
      file: the file name in the task directory.
      header: whether the first line is a header. With a header, every row must have as many
        columns as it; without one, exactly `columns`.
      text_a, text_b, label: columns (text_b / label None: absent).
      index: the column holding the GLUE test index (None: use the line number).
    """

    file: str
    header: bool
    text_a: int
    text_b: int | None = None
    label: int | None = None
    index: int | None = None
    columns: int | None = None

    def needed_columns(self) -> int:
        used = [c for c in (self.text_a, self.text_b, self.label, self.index) if c is not None]
        return max(c + 1 if c >= 0 else -c for c in used)


@dataclasses.dataclass(frozen=True)
class TfdsSource:
    """Where a GLUE split lives in TensorFlow Datasets: `glue/<config>`, split, text fields."""

    config: str
    split: str
    text_a: str
    text_b: str | None = None


_GLUE_TFDS_FIELDS = {
    "cola": ("sentence", None), "sst2": ("sentence", None), "mrpc": ("sentence1", "sentence2"),
    "stsb": ("sentence1", "sentence2"), "qqp": ("question1", "question2"), "mnli": ("premise", "hypothesis"),
    "ax": ("premise", "hypothesis"), "qnli": ("question", "sentence"), "rte": ("sentence1", "sentence2"),
    "wnli": ("sentence1", "sentence2"),
}


def _tfds(config: str, split: str) -> TfdsSource:
    return TfdsSource(config, split, *_GLUE_TFDS_FIELDS[config])


def _standard_tfds(config: str) -> dict:
    return {"train": _tfds(config, "train"), "dev": _tfds(config, "validation"), "test": _tfds(config, "test")}


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
    import tensorflow_datasets as tfds

    return tfds.as_numpy(builder.as_dataset(split=split, shuffle_files=False))


def as_text(value) -> str:
    """A TFDS string (bytes) as str."""
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


class GlueTask(Task):
    """A GLUE task read from the original's TSV layout (or TFDS `glue/<config>`).

    Args:
      name: the original's name.
      kind: "classification" or "regression".
      label_list: label names as they appear in the files (classification).
      layouts: split → TsvLayout.
      tfds_sources: split → TfdsSource.
      double_train: the train pairs are unordered (MRPC, STS): `double_unordered` doubles them.
    """

    def __init__(self, name: str, kind: str, label_list, layouts: Mapping[str, TsvLayout],
                 tfds_sources: Mapping[str, TfdsSource], double_train: bool = False):
        self.name = name
        self.kind = kind
        self.label_list = tuple(label_list) if label_list is not None else None
        self.layouts = dict(layouts)
        self.tfds_sources = dict(tfds_sources)
        self.double_train = double_train

    def splits(self) -> tuple:
        return tuple(self.layouts)

    def test_splits(self) -> tuple:
        return tuple(split for split, layout in self.layouts.items() if layout.label is None)

    # -- reading ---------------------------------------------------------------------------------

    def read_examples(self, data_dir, split, *, tfds_data_dir=None, double_unordered=True, skip_bad_rows=False,
                      skip_bad_answers=False, stats=None):
        self._check_split(split)
        stats = stats if stats is not None else DataStats()
        examples = None
        if tfds_data_dir is not None:
            examples = self._read_tfds(tfds_data_dir, split, stats)
        if examples is None:
            examples = self._read_tsv(data_dir, split, skip_bad_rows, stats)
        if self.double_train and double_unordered and split == "train":
            swapped = [dataclasses.replace(e, example_index=len(examples) + i, guid=e.guid + "-swapped",
                                           text_a=e.text_b, text_b=e.text_a) for i, e in enumerate(examples)]
            stats.doubled += len(swapped)
            examples = examples + swapped
        stats.examples += len(examples)
        logger.info("%s %s: %d examples (%d swapped copies), %d rows skipped", self.name, split, len(examples),
                    stats.doubled, stats.skipped)
        return examples

    def _parse_label(self, raw: str):
        """The label of a row; raises _BadRecord saying what is wrong with it."""
        if self.kind == "regression":
            try:
                value = float(raw)
            except ValueError:
                raise _BadRecord(f"label {raw!r} is not a number") from None
            if not math.isfinite(value) or not 0.0 <= value <= 5.0:
                raise _BadRecord(f"label {raw!r} is outside the similarity range [0, 5]")
            return value
        if raw not in self.label_list:
            raise _BadRecord(f"label {raw!r} is not one of {', '.join(self.label_list)}")
        return raw

    def _parse_tfds_label(self, raw: str, where: str):
        try:
            return self._parse_label(raw)
        except _BadRecord as e:
            raise DataError(f"{where}: {e}") from None

    def _read_tsv(self, data_dir, split, skip_bad_rows, stats):
        layout = self.layouts[split]
        path = os.path.join(task_dir(data_dir, self.name), layout.file)
        if not os.path.isfile(path):
            hint = (f"Put GLUE's {self.name} files there (download_glue_data.py output, with the directory "
                    f"renamed to lower-case '{self.name}')")
            if split == "diagnostic":
                hint = "Move GLUE's diagnostic/diagnostic.tsv into the mnli directory"
            config = self.tfds_sources[split].config
            raise missing_file_error(path, self.name, f"{hint}, or pass tfds_data_dir where TFDS glue/{config} "
                                     "is prepared.")
        lines = read_text_file(path)
        stats.lines += len(lines)
        expected = layout.columns
        examples = []
        for number, line in enumerate(lines, start=1):
            where = f"{path}:{number}"
            if number == 1 and layout.header:
                stats.header_lines += 1
                expected = len(line.split("\t"))
                if expected < layout.needed_columns():
                    raise DataError(f"{where}: the header has {expected} columns; {self.name} {split} needs at "
                                    f"least {layout.needed_columns()} (is this the GLUE {layout.file}?)")
                continue
            if not line.strip():
                stats.blank_lines += 1
                continue
            fields = line.split("\t")
            try:
                if len(fields) != expected:
                    raise _BadRecord(f"{len(fields)} tab-separated columns, expected {expected}"
                                     + (" (as the header)" if layout.header else ""))
                label = self._parse_label(fields[layout.label]) if layout.label is not None else None
            except _BadRecord as e:
                if not skip_bad_rows:
                    raise DataError(f"{where}: {e} (the hparam \"skip_bad_rows\": true skips such rows)") from None
                stats.skip(where, str(e))
                continue
            guid = fields[layout.index] if layout.index is not None else f"{split}-{number}"
            examples.append(Example(self.name, split, len(examples), guid, fields[layout.text_a],
                                    fields[layout.text_b] if layout.text_b is not None else None, label))
        return examples

    def _read_tfds(self, tfds_data_dir, split, stats):
        source = self.tfds_sources[split]
        builder = tfds_builder_if_prepared(f"glue/{source.config}", tfds_data_dir, source.split)
        if builder is None:
            return None
        names = getattr(builder.info.features["label"], "names", None)
        examples = []
        for record in tfds_records(builder, source.split):
            stats.lines += 1
            raw = record["label"]
            if self.layouts[split].label is None or (self.kind == "classification" and int(raw) < 0):
                label = None
            elif self.kind == "regression":
                label = self._parse_tfds_label(str(float(raw)), f"TFDS glue/{source.config} {source.split}")
            elif self.label_list == ("0", "1"):
                label = str(int(raw))  # 0/1 tasks: TFDS class 1 is GLUE's "1" (also for WNLI)
            else:
                label = self._parse_tfds_label(names[int(raw)], f"TFDS glue/{source.config} {source.split}")
            guid = str(int(record["idx"])) if self.layouts[split].label is None else f"{split}-{int(record['idx'])}"
            examples.append(Example(self.name, split, len(examples), guid, as_text(record[source.text_a]),
                                    as_text(record[source.text_b]) if source.text_b else None, label))
        return examples

    # -- features --------------------------------------------------------------------------------

    def featurize(self, examples, tokenizer, max_seq_length, is_training, stats=None, **qa_options):
        if qa_options:
            raise TypeError(f"{self.name} featurize got QA options {sorted(qa_options)}")
        is_pair = any(e.text_b is not None for e in examples)
        _check_max_seq_length(max_seq_length, 3 if is_pair else 2)
        stats = stats if stats is not None else DataStats()
        specials = tokenizer.special_token_ids
        ids_a = tokenizer.tokenize([e.text_a for e in examples]) if examples else []
        pair_index = [i for i, e in enumerate(examples) if e.text_b is not None]
        ids_b = dict(zip(pair_index, tokenizer.tokenize([examples[i].text_b for i in pair_index]))) \
            if pair_index else {}
        features = []
        for index, example in enumerate(examples):
            if example.label is None and is_training:
                raise ValueError(f"{self.name} example {example.guid} ({example.split}) has no label; "
                                 "training needs labelled examples")
            a = list(ids_a[index])
            b = list(ids_b.get(index, ()))
            if b:  # as the original: a second text with no tokens takes the single layout
                truncated = _truncate_pair(a, b, max_seq_length - 3)
                tokens = [specials.cls] + a + [specials.sep] + b + [specials.sep]
                segments = [0] * (len(a) + 2) + [1] * (len(b) + 1)
            else:
                truncated = len(a) > max_seq_length - 2
                a = a[: max_seq_length - 2]
                tokens = [specials.cls] + a + [specials.sep]
                segments = [0] * len(tokens)
            stats.truncated += truncated
            label_id, label_value = 0, 0.0
            if example.label is not None:
                if self.kind == "classification":
                    label_id = self.label_list.index(example.label)
                else:
                    label_value = float(example.label) / 5.0  # STS: (y − 0) / 5, as the original
            features.append(Feature(
                eid=example.example_index, example_index=example.example_index,
                input_ids=pad_to(tokens, max_seq_length, specials.pad),
                input_mask=pad_to([1] * len(tokens), max_seq_length), segment_ids=pad_to(segments, max_seq_length),
                label_id=label_id, label_value=label_value))
        stats.features += len(features)
        if stats.truncated:
            logger.info("%s: %d of %d examples truncated to max_seq_length %d", self.name, stats.truncated,
                        len(examples), max_seq_length)
        return features

    def postprocess(self, examples, features, outputs, **options):
        """outputs["logits"]: [N, C] (classification) or [N] / [N, 1] (regression, on the y/5 scale)."""
        logits = np.asarray(outputs["logits"])
        if logits.shape[0] != len(features) or len(features) != len(examples):
            raise ValueError(f"{self.name}: {logits.shape[0]} output rows, {len(features)} features, "
                             f"{len(examples)} examples; they must align one to one")
        if self.kind == "classification":
            return [self.label_list[i] for i in np.argmax(logits.reshape(len(features), -1), axis=-1)]
        return [5.0 * float(v) for v in logits.reshape(len(features))]  # back to the 0-5 scale


class QATask(Task):
    """An extractive QA task: SQuAD JSON (squadv1, squad = 2.0) or MRQA 2019 jsonl.

    Featurization and post-processing are in `qa.py`.

    Args:
      name: the original's name.
      file_format: "squad" or "mrqa".
      version_2: SQuAD 2.0 (unanswerable questions, null odds).
      tfds_name: the TFDS dataset ("squad/v1.1", "squad/v2.0") or None.
    """

    kind = "qa"

    def __init__(self, name: str, file_format: str, version_2: bool = False, tfds_name: str | None = None):
        self.name = name
        self.file_format = file_format
        self.version_2 = version_2
        self.tfds_name = tfds_name

    def splits(self) -> tuple:
        return ("train", "dev")

    def read_examples(self, data_dir, split, *, tfds_data_dir=None, double_unordered=True, skip_bad_rows=False,
                      skip_bad_answers=False, stats=None):
        from convbert_tf.finetuning import qa

        self._check_split(split)
        return qa.read_qa_examples(self, data_dir, split, tfds_data_dir=tfds_data_dir,
                                   skip_bad_answers=skip_bad_answers or skip_bad_rows,
                                   stats=stats if stats is not None else DataStats())

    def featurize(self, examples, tokenizer, max_seq_length, is_training, stats=None, **qa_options):
        """qa_options: max_query_length (64), doc_stride (128); see `qa.featurize_qa`."""
        from convbert_tf.finetuning import qa

        return qa.featurize_qa(examples, tokenizer, max_seq_length, is_training,
                               stats=stats if stats is not None else DataStats(), **qa_options)

    def postprocess(self, examples, features, outputs, **options):
        """options: n_best_size (20), max_answer_length (30), na_threshold (−2.75); see `qa.postprocess_qa`."""
        from convbert_tf.finetuning import qa

        return qa.postprocess_qa(examples, features, outputs, version_2=self.version_2, **options)


# CoNLL-2000 chunk types; the tag set is O plus B/I/E/S of each.
CHUNK_TYPES = ("ADJP", "ADVP", "CONJP", "INTJ", "LST", "NP", "PP", "PRT", "SBAR", "UCP", "VP")


class ChunkTask(Task):
    """CoNLL-2000 chunking: word first column, chunk tag (IOB) last; tags converted to BIOES.

    Every word's first sub-token carries its tag; sentences longer than max_seq_length − 2
    sub-tokens lose their last words (counted; those words are predicted "O"). Segment ids are 1
    on every real token, [CLS] and [SEP] included, as in the original's tagging tasks.

    Args:
      name: the original's name.
      chunk_types: the chunk types; the tag set is O plus B/I/E/S of each.
      span_rule: how tag sequences are read into chunks, both when the gold IOB tags are
        converted to BIOES and when F1 is scored: "original" or "conlleval" (`scorers.tag_spans`).
    """

    kind = "tagging"

    def __init__(self, name: str = "chunk", chunk_types: Sequence[str] = CHUNK_TYPES, span_rule: str = "original"):
        if span_rule not in scorers.SPAN_RULES:
            raise ValueError(f"chunk_span_rule {span_rule!r} is not one of {scorers.SPAN_RULES}")
        self.name = name
        self.chunk_types = tuple(chunk_types)
        self.span_rule = span_rule
        self.label_list = ("O",) + tuple(f"{p}-{t}" for t in self.chunk_types for p in "BIES")

    def splits(self) -> tuple:
        return ("train", "dev", "test")

    def _check_tag(self, tag: str):
        prefix, _, kind = tag.partition("-")
        if tag != "O" and (prefix not in ("B", "I", "E", "S") or kind not in self.chunk_types):
            raise _BadRecord(f"tag {tag!r} is not O or B/I/E/S-<type> with a CoNLL-2000 chunk type "
                            f"({', '.join(self.chunk_types)})")

    def read_examples(self, data_dir, split, *, tfds_data_dir=None, double_unordered=True, skip_bad_rows=False,
                      skip_bad_answers=False, stats=None):
        self._check_split(split)
        stats = stats if stats is not None else DataStats()
        path = os.path.join(task_dir(data_dir, self.name), f"{split}.txt")
        if not os.path.isfile(path):
            raise missing_file_error(path, self.name, "Put the CoNLL-2000 file there (one 'word POS chunk-tag' "
                                     "line per word, a blank line between sentences).")
        examples = []
        words, tags, bad, start_line = [], [], None, 1

        def finish():
            nonlocal words, tags, bad
            if bad is not None:
                stats.skip(*bad)
                stats.skipped += len(words) - 1  # every line of the skipped sentence counts
            elif words:
                examples.append(TaggingExample(self.name, split, len(examples), f"{split}-{start_line}",
                                               tuple(words), tuple(scorers.iob_to_bioes(tags, self.span_rule))))
            words, tags, bad = [], [], None

        lines = read_text_file(path)
        stats.lines += len(lines)
        for number, line in enumerate(lines, start=1):
            fields = line.split()
            if not fields:
                stats.blank_lines += 1
                finish()
                continue
            if fields[0] == "-DOCSTART-":
                stats.docstart_lines += 1
                continue
            where = f"{path}:{number}"
            if not words:
                start_line = number
            words.append(fields[0])
            tags.append(fields[-1])
            if bad is not None:
                continue
            try:
                if len(fields) < 2:
                    raise _BadRecord("one column; a line is 'word ... chunk-tag'")
                self._check_tag(fields[-1])
            except _BadRecord as e:
                if not skip_bad_rows:
                    raise DataError(f"{where}: {e} (the hparam \"skip_bad_rows\": true skips such sentences)") from None
                bad = (where, f"{e} (sentence skipped)")
        finish()
        stats.examples += len(examples)
        logger.info("%s %s: %d sentences, %d lines skipped", self.name, split, len(examples), stats.skipped)
        return examples

    def featurize(self, examples, tokenizer, max_seq_length, is_training, stats=None, **qa_options):
        if qa_options:
            raise TypeError(f"{self.name} featurize got QA options {sorted(qa_options)}")
        _check_max_seq_length(max_seq_length, 2)
        stats = stats if stats is not None else DataStats()
        specials = tokenizer.special_token_ids
        vocabulary = sorted({word for example in examples for word in example.words})
        word_ids = dict(zip(vocabulary, tokenizer.tokenize(vocabulary))) if vocabulary else {}
        label_ids = {label: index for index, label in enumerate(self.label_list)}
        features = []
        for example in examples:
            tokens, tag_ids, weights, positions = [specials.cls], [0], [0.0], []
            truncated = False
            for word, tag in zip(example.words, example.tags):
                pieces = word_ids[word]
                if truncated or len(tokens) + len(pieces) + 1 > max_seq_length:
                    truncated = True
                    positions.append(-1)
                    continue
                if not pieces:
                    stats.words_without_tokens += 1
                    positions.append(-1)
                    continue
                positions.append(len(tokens))
                tag_ids += [label_ids[tag]] + [0] * (len(pieces) - 1)
                weights += [1.0] + [0.0] * (len(pieces) - 1)
                tokens += pieces
            tokens.append(specials.sep)
            tag_ids.append(0)
            weights.append(0.0)
            stats.truncated += truncated
            features.append(Feature(
                eid=example.example_index, example_index=example.example_index,
                input_ids=pad_to(tokens, max_seq_length, specials.pad),
                input_mask=pad_to([1] * len(tokens), max_seq_length),
                segment_ids=pad_to([1] * len(tokens), max_seq_length),
                tag_ids=pad_to(tag_ids, max_seq_length),
                tag_weights=pad_to(weights, max_seq_length, 0.0), word_positions=tuple(positions)))
        stats.features += len(features)
        if stats.truncated:
            logger.info("%s: %d of %d sentences truncated to max_seq_length %d", self.name, stats.truncated,
                        len(examples), max_seq_length)
        return features

    def postprocess(self, examples, features, outputs, **options):
        """outputs["logits"]: [N, T, C]; each word gets the arg-max tag at its first sub-token
        ("O" for words without a position)."""
        logits = np.asarray(outputs["logits"])
        if logits.shape[0] != len(features) or len(features) != len(examples):
            raise ValueError(f"{self.name}: {logits.shape[0]} output rows, {len(features)} features, "
                             f"{len(examples)} examples; they must align one to one")
        best = np.argmax(logits, axis=-1)  # [N, T]
        return [[self.label_list[best[row, p]] if p >= 0 else "O" for p in feature.word_positions]
                for row, feature in enumerate(features)]


# ----------------------------------------------------------------------------------------------
# The registry.

_BINARY = ("0", "1")
_ENTAILMENT = ("entailment", "not_entailment")
_MNLI_LABELS = ("contradiction", "entailment", "neutral")


def _pair_layouts(label_column=3) -> dict:
    """QNLI, RTE, WNLI: index, a, b, label; test: index, a, b."""
    return {"train": TsvLayout("train.tsv", True, 1, 2, label_column),
            "dev": TsvLayout("dev.tsv", True, 1, 2, label_column),
            "test": TsvLayout("test.tsv", True, 1, 2, None, index=0)}


def _build_tasks() -> dict[str, Task]:
    tasks = [
        GlueTask("cola", "classification", _BINARY, {
            "train": TsvLayout("train.tsv", False, 3, label=1, columns=4),
            "dev": TsvLayout("dev.tsv", False, 3, label=1, columns=4),
            "test": TsvLayout("test.tsv", True, 1, index=0)}, _standard_tfds("cola")),
        GlueTask("sst", "classification", _BINARY, {
            "train": TsvLayout("train.tsv", True, 0, label=1),
            "dev": TsvLayout("dev.tsv", True, 0, label=1),
            "test": TsvLayout("test.tsv", True, 1, index=0)}, _standard_tfds("sst2")),
        GlueTask("mrpc", "classification", _BINARY, {
            "train": TsvLayout("train.tsv", True, 3, 4, 0),
            "dev": TsvLayout("dev.tsv", True, 3, 4, 0),
            "test": TsvLayout("test.tsv", True, 3, 4, None, index=0)}, _standard_tfds("mrpc"), double_train=True),
        GlueTask("sts", "regression", None, {
            "train": TsvLayout("train.tsv", True, -3, -2, -1),
            "dev": TsvLayout("dev.tsv", True, -3, -2, -1),
            "test": TsvLayout("test.tsv", True, -2, -1, None, index=0)}, _standard_tfds("stsb"), double_train=True),
        GlueTask("qqp", "classification", _BINARY, {
            "train": TsvLayout("train.tsv", True, 3, 4, 5),
            "dev": TsvLayout("dev.tsv", True, 3, 4, 5),
            "test": TsvLayout("test.tsv", True, 1, 2, None, index=0)}, _standard_tfds("qqp")),
        GlueTask("mnli", "classification", _MNLI_LABELS, {
            "train": TsvLayout("train.tsv", True, 8, 9, -1),
            "dev": TsvLayout("dev_matched.tsv", True, 8, 9, -1),
            "dev_mismatched": TsvLayout("dev_mismatched.tsv", True, 8, 9, -1),
            "test": TsvLayout("test_matched.tsv", True, 8, 9, None, index=0),
            "test_mismatched": TsvLayout("test_mismatched.tsv", True, 8, 9, None, index=0),
            "diagnostic": TsvLayout("diagnostic.tsv", True, 1, 2, None, index=0)}, {
            "train": _tfds("mnli", "train"), "dev": _tfds("mnli", "validation_matched"),
            "dev_mismatched": _tfds("mnli", "validation_mismatched"), "test": _tfds("mnli", "test_matched"),
            "test_mismatched": _tfds("mnli", "test_mismatched"), "diagnostic": _tfds("ax", "test")}),
        GlueTask("qnli", "classification", _ENTAILMENT, _pair_layouts(), _standard_tfds("qnli")),
        GlueTask("rte", "classification", _ENTAILMENT, _pair_layouts(), _standard_tfds("rte")),
        GlueTask("wnli", "classification", _BINARY, _pair_layouts(), _standard_tfds("wnli")),
        QATask("squadv1", "squad", version_2=False, tfds_name="squad/v1.1"),
        QATask("squad", "squad", version_2=True, tfds_name="squad/v2.0"),
        QATask("newsqa", "mrqa"),
        QATask("naturalqs", "mrqa"),
        QATask("triviaqa", "mrqa"),
        QATask("searchqa", "mrqa"),
        ChunkTask("chunk"),
    ]
    return {task.name: task for task in tasks}


TASKS: dict[str, Task] = _build_tasks()


def get_task(name: str, chunk_span_rule: str = "original") -> Task:
    """The task registered under the original's `name`; a chunking task reads its chunks by
    `chunk_span_rule` ("original" or "conlleval", see `scorers.tag_spans`).

    Raises:
      ValueError: an unknown name (the message lists the known ones) or span rule.
    """
    try:
        task = TASKS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown task {name!r}; the tasks are {', '.join(TASKS)}") from None
    if isinstance(task, ChunkTask) and chunk_span_rule != task.span_rule:
        return ChunkTask(task.name, task.chunk_types, chunk_span_rule)
    return task
