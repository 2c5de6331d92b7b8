"""The GLUE tasks: TSV (or TFDS) reading, sentence / pair featurization, the [CLS] head, scores,
submission files and text signatures.

Input formatting: `[CLS] a [SEP]` or `[CLS] a [SEP] b [SEP]`, segment ids 0 then 1. A pair is
truncated longest-first to max_seq_length − 3 (a token is dropped from the end of the longer
part; on a tie from b), a single text to max_seq_length − 2. Truncated examples are counted.
The head is dropout 0.1 and one dense layer on the [CLS] state (google-research/electra,
finetune/classification/classification_tasks.py).

Decisions that differ from the original:

* STS targets are scaled to y/5 for training (as the original) and `postprocess` multiplies the
  model's outputs by 5 again, so predictions, metrics and test files are on the 0-5 scale. The
  original never rescaled its outputs. Submission files clip to [0, 5]; metrics use unclipped
  values.
* A malformed row (wrong number of columns, unknown or non-numeric label) is a `DataError`
  naming file and line; the original logged it and silently dropped the row. `skip_bad_rows=True`
  skips such rows instead, and counts them in `DataStats`.
* `mnli` also reads `dev_mismatched` (the original's `dev` is dev_matched only).
* Test splits are written as the GLUE server's submission files (CoLA.tsv, SST-2.tsv, ...,
  MNLI-m.tsv, MNLI-mm.tsv, AX.tsv for the MNLI diagnostic set) with the header
  `index<TAB>prediction`, one row per test example keyed by the test file's index column:
  label names, and for STS-B the similarity on the 0-5 scale. The original wrote only pickles of
  logits; nothing turned them into submissions.

Legend: B batch, T length, D hidden, C classes.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from typing import Mapping

import tensorflow as tf

from convbert_tf.finetuning import serving
from convbert_tf.finetuning.examples import (BadRecord, DataError, DataStats, Example, Feature, as_text,
                                             check_max_seq_length, missing_file_error, pad_to, read_text_file,
                                             task_dir, tfds_builder_if_prepared, tfds_records, truncate_pair)
from convbert_tf.finetuning.tasks.base import Task
from convbert_tf.io import atomic_write_text
from convbert_tf.layers.classification_head import ClassificationHead

logger = logging.getLogger(__name__)


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


def tfds_source(config: str, split: str) -> TfdsSource:
    """The TfdsSource of `split` of TFDS glue/<config>, with that config's text fields."""
    return TfdsSource(config, split, *_GLUE_TFDS_FIELDS[config])


def standard_tfds(config: str) -> dict:
    """train, dev, test of TFDS glue/<config> (train, validation, test)."""
    return {"train": tfds_source(config, "train"), "dev": tfds_source(config, "validation"),
            "test": tfds_source(config, "test")}


class GlueTask(Task):
    """A GLUE task read from the original's TSV layout (or TFDS `glue/<config>`); a subclass per kind.

    Args:
      name: the original's name.
      label_list: label names as they appear in the files (classification; None for regression).
      layouts: split → TsvLayout.
      tfds_sources: split → TfdsSource.
      submission_files: test split → the GLUE server's file name.
      double_train: the train pairs are unordered (MRPC, STS): `double_unordered` doubles them.
    """

    def __init__(self, name: str, label_list, layouts: Mapping[str, TsvLayout], tfds_sources: Mapping[str, TfdsSource],
                 submission_files: Mapping[str, str], double_train: bool = False):
        self.name = name
        self.label_list = tuple(label_list) if label_list is not None else None
        self.layouts = dict(layouts)
        self.tfds_sources = dict(tfds_sources)
        self.submission_files = dict(submission_files)
        self.double_train = double_train

    def splits(self) -> tuple:
        return tuple(self.layouts)

    def test_splits(self) -> tuple:
        return tuple(split for split, layout in self.layouts.items() if layout.label is None)

    @property
    def is_pair(self) -> bool:
        """Whether the task's examples are text pairs."""
        return self.layouts["train"].text_b is not None

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

    def _parse_tfds_label(self, raw: str, where: str):
        try:
            return self._parse_label(raw)
        except BadRecord as e:
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
                    raise BadRecord(f"{len(fields)} tab-separated columns, expected {expected}"
                                     + (" (as the header)" if layout.header else ""))
                label = self._parse_label(fields[layout.label]) if layout.label is not None else None
            except BadRecord as e:
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
            label = None
            if self.layouts[split].label is not None:
                label = self._tfds_label(record["label"], names, f"TFDS glue/{source.config} {source.split}")
            guid = str(int(record["idx"])) if self.layouts[split].label is None else f"{split}-{int(record['idx'])}"
            examples.append(Example(self.name, split, len(examples), guid, as_text(record[source.text_a]),
                                    as_text(record[source.text_b]) if source.text_b else None, label))
        return examples

    # -- features --------------------------------------------------------------------------------

    def featurize(self, examples, tokenizer, max_seq_length, is_training, stats=None, **qa_options):
        if qa_options:
            raise TypeError(f"{self.name} featurize got QA options {sorted(qa_options)}")
        is_pair = any(e.text_b is not None for e in examples)
        check_max_seq_length(max_seq_length, 3 if is_pair else 2)
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
                truncated = truncate_pair(a, b, max_seq_length - 3)
                tokens = [specials.cls] + a + [specials.sep] + b + [specials.sep]
                segments = [0] * (len(a) + 2) + [1] * (len(b) + 1)
            else:
                truncated = len(a) > max_seq_length - 2
                a = a[: max_seq_length - 2]
                tokens = [specials.cls] + a + [specials.sep]
                segments = [0] * len(tokens)
            stats.truncated += truncated
            labels = self._label_fields(example.label) if example.label is not None else {}
            features.append(Feature(
                eid=example.example_index, example_index=example.example_index,
                input_ids=pad_to(tokens, max_seq_length, specials.pad),
                input_mask=pad_to([1] * len(tokens), max_seq_length), segment_ids=pad_to(segments, max_seq_length),
                **labels))
        stats.features += len(features)
        if stats.truncated:
            logger.info("%s: %d of %d examples truncated to max_seq_length %d", self.name, stats.truncated,
                        len(examples), max_seq_length)
        return features

    # -- per kind --------------------------------------------------------------------------------

    def _parse_label(self, raw: str):
        """The label of a row; raises BadRecord saying what is wrong with it."""
        raise NotImplementedError

    def _tfds_label(self, raw, names, where: str):
        """The label of a TFDS record of a labelled split (None: the record has none)."""
        raise NotImplementedError

    def _label_fields(self, label) -> dict:
        """The Feature fields that carry an example's label."""
        raise NotImplementedError

    def _predict(self, logits, context):
        """The serving outputs {name: tensor} of the head's float32 logits [B, C]."""
        raise NotImplementedError

    def _submission_value(self, prediction) -> str:
        """A prediction as the submission file writes it."""
        raise NotImplementedError

    # -- model -----------------------------------------------------------------------------------

    def build_head(self, width, dtype, options):
        head = ClassificationHead(self.num_labels, dtype=dtype, name=self.name)
        head.build((None, width))
        return head

    def head_outputs(self, head, sequence_output, features, training=None):
        return {"logits": head(sequence_output[:, 0], training=training)}

    # -- outputs ---------------------------------------------------------------------------------

    def submission_filename(self, split: str) -> str:
        """The GLUE server's file name for a test split (mnli: test, test_mismatched, diagnostic)."""
        try:
            return self.submission_files[split]
        except KeyError:
            raise ValueError(f"no GLUE submission file for task {self.name!r} split {split!r}; there is one for: "
                             f"{', '.join(self.submission_files)}") from None

    def write_test_predictions(self, directory, split, examples, predictions) -> str:
        """Writes `<directory>/<GLUE file>.tsv` for a test split (predictions aligned with `examples`,
        whose guid is the test file's index). Returns its path."""
        name = self.submission_filename(split)
        if len(predictions) != len(examples):
            raise ValueError(f"{self.name} {split}: {len(predictions)} predictions for {len(examples)} examples")
        lines = ["index\tprediction"]
        lines += [f"{example.guid}\t{self._submission_value(prediction)}"
                  for example, prediction in zip(examples, predictions)]
        return atomic_write_text(os.path.join(os.fspath(directory), name), "\n".join(lines) + "\n")

    def serving_functions(self, context):
        def predict(inputs):
            logits = tf.cast(context.head(context.sequence_output(inputs)[:, 0], training=False), tf.float32)
            return self._predict(logits, context)

        return serving.text_functions(context, predict, pair=self.is_pair)

    def _check_labelled(self, predictions, examples):
        if len(predictions) != len(examples):
            raise ValueError(f"{self.name}: {len(predictions)} predictions for {len(examples)} examples")
        unlabeled = [e for e in examples if e.label is None]
        if unlabeled:
            raise ValueError(f"{self.name}: example {unlabeled[0].guid} of split {unlabeled[0].split} has no "
                             "label; test splits cannot be scored (write a submission file instead)")
