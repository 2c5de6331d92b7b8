"""The Task base class: what every fine-tuning task provides, from its files to its SavedModel.

The pipeline, per task and split:

    examples = task.read_examples(data_dir, split)                     # list of examples
    features = task.featurize(examples, tokenizer, max_seq_length, is_training)  # list[Feature]
    outputs  = {key: array [n_features, ...]}                           # the model's, in feature order
    predictions = task.postprocess(examples, features, outputs)
    metrics = task.score(examples, predictions)                         # {metric: value}

and for the model: `build_head` makes the task's head on the shared encoder, `head_outputs` runs
it, `per_example_loss` is its loss; `write_predictions` / `write_test_predictions` write its
output files and `serving_functions` its SavedModel signatures.

Legend: B batch, T length, D hidden.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Mapping, Sequence

from convbert_tf.finetuning.examples import DataStats
from convbert_tf.io import atomic_write_json


@dataclasses.dataclass(frozen=True)
class HeadOptions:
    """The hparams of the heads and their losses (only the QA head reads them)."""

    beam_size: int = 20
    joint_prediction: bool = True
    answerable_classifier: bool = True
    answerable_uses_start_logits: bool = True
    answerable_weight: float = 0.5


class Task:
    """A fine-tuning task: its name and kind, its splits, how its data is read, modelled and scored.

    Attributes:
      name: the original's task name (also its head's layer name).
      kind: "classification", "regression", "qa" or "tagging" (descriptive; behaviour lives in
        the subclasses).
      label_list: label names, id = position (classification, tagging); None otherwise.
    """

    name: str
    kind: str
    label_list: tuple | None = None

    # -- data ------------------------------------------------------------------------------------

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

    def featurize_options(self, hp) -> dict:
        """The keyword options `featurize` takes from the fine-tuning hparams `hp` (none here)."""
        return {}

    def postprocess(self, examples: Sequence, features: Sequence, outputs: Mapping[str, Any], **options):
        """The model's outputs (arrays [n_features, ...] in feature order) to per-example predictions:
        label names (classification), 0-5 floats (sts), a `QAPredictions` (qa), BIOES tags per
        word (tagging)."""
        raise NotImplementedError

    def postprocess_options(self, hp) -> dict:
        """The keyword options `postprocess` takes from the fine-tuning hparams `hp` (none here)."""
        return {}

    def score(self, examples: Sequence, predictions) -> dict:
        """Metrics of one split's predictions, metric names as the original's."""
        raise NotImplementedError

    # -- model -----------------------------------------------------------------------------------

    @property
    def num_labels(self) -> int:
        """The width of the head's output (1 for regression)."""
        return len(self.label_list) if self.label_list else 1

    def build_head(self, width: int, dtype, options: HeadOptions):
        """The task's head, a Keras layer named after the task, built for hidden size `width`."""
        raise NotImplementedError

    def head_outputs(self, head, sequence_output, features, training=None) -> dict:
        """The head's outputs {name: tensor} for encoder states `sequence_output` [B, T, D]."""
        raise NotImplementedError

    def per_example_loss(self, features, outputs: Mapping, options: HeadOptions):
        """[B] losses of every row of the batch as if it were this task's."""
        raise NotImplementedError

    # -- outputs ---------------------------------------------------------------------------------

    def write_predictions(self, directory, split: str, examples: Sequence, predictions) -> str:
        """Writes `<directory>/<task>_<split>.json`: {"task", "split", "predictions": [row per
        example]} (rows from `prediction_row`), atomically. Returns its path."""
        if len(predictions) != len(examples):
            raise ValueError(f"{self.name} {split}: {len(predictions)} predictions for {len(examples)} examples")
        rows = [self.prediction_row(example, prediction) for example, prediction in zip(examples, predictions)]
        path = os.path.join(os.fspath(directory), f"{self.name}_{split}.json")
        return atomic_write_json(path, {"task": self.name, "split": split, "predictions": rows})

    def prediction_row(self, example, prediction) -> dict:
        """One example's entry in the predictions file."""
        raise NotImplementedError

    def write_test_predictions(self, directory, split: str, examples: Sequence, predictions) -> str:
        """Writes the outputs of an unlabelled test split into `directory`. Returns the path."""
        return self.write_predictions(directory, split, examples, predictions)

    # -- serving ---------------------------------------------------------------------------------

    def serving_functions(self, context):
        """(serve_ids, serve_text): the tf.functions of the task's SavedModel signatures, given a
        `serving.ServingContext`."""
        raise NotImplementedError

    # -- helpers ---------------------------------------------------------------------------------

    def _check_split(self, split: str):
        if split not in self.splits():
            raise ValueError(f"task {self.name} has no split {split!r}; its splits are {', '.join(self.splits())}")

    def _check_aligned(self, outputs, features, examples):
        if outputs.shape[0] != len(features) or len(features) != len(examples):
            raise ValueError(f"{self.name}: {outputs.shape[0]} output rows, {len(features)} features, "
                             f"{len(examples)} examples; they must align one to one")

    def __repr__(self):
        return f"{type(self).__name__}({self.name!r}, kind={self.kind!r})"
