"""The table of fine-tuning tasks, looked up by the original release's task names with `get_task`:

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

A task kind is a Task subclass (`glue_kinds.ClassificationTask`, `glue_kinds.RegressionTask`,
`squad.SquadTask`, `mrqa.MrqaTask`, `chunk.ChunkTask`); adding a task is a line of the table below.
"""

from __future__ import annotations

from convbert_tf.finetuning.tasks.base import Task
from convbert_tf.finetuning.tasks.chunk import ChunkTask
from convbert_tf.finetuning.tasks.glue import TsvLayout, standard_tfds, tfds_source
from convbert_tf.finetuning.tasks.glue_kinds import ClassificationTask, RegressionTask
from convbert_tf.finetuning.tasks.mrqa import MrqaTask
from convbert_tf.finetuning.tasks.squad import SquadTask

_BINARY = ("0", "1")
_ENTAILMENT = ("entailment", "not_entailment")
_MNLI_LABELS = ("contradiction", "entailment", "neutral")


def _pair_layouts(label_column=3) -> dict:
    """QNLI, RTE, WNLI: index, a, b, label; test: index, a, b."""
    return {"train": TsvLayout("train.tsv", True, 1, 2, label_column),
            "dev": TsvLayout("dev.tsv", True, 1, 2, label_column),
            "test": TsvLayout("test.tsv", True, 1, 2, None, index=0)}


def _build_tasks() -> dict[str, Task]:
    """The table: every task of the original release, in its order."""
    tasks = [
        ClassificationTask("cola", _BINARY, {
            "train": TsvLayout("train.tsv", False, 3, label=1, columns=4),
            "dev": TsvLayout("dev.tsv", False, 3, label=1, columns=4),
            "test": TsvLayout("test.tsv", True, 1, index=0)}, standard_tfds("cola"), {"test": "CoLA.tsv"},
            metrics=("mcc",)),
        ClassificationTask("sst", _BINARY, {
            "train": TsvLayout("train.tsv", True, 0, label=1),
            "dev": TsvLayout("dev.tsv", True, 0, label=1),
            "test": TsvLayout("test.tsv", True, 1, index=0)}, standard_tfds("sst2"), {"test": "SST-2.tsv"}),
        ClassificationTask("mrpc", _BINARY, {
            "train": TsvLayout("train.tsv", True, 3, 4, 0),
            "dev": TsvLayout("dev.tsv", True, 3, 4, 0),
            "test": TsvLayout("test.tsv", True, 3, 4, None, index=0)}, standard_tfds("mrpc"), {"test": "MRPC.tsv"},
            metrics=("accuracy", "f1"), double_train=True),
        RegressionTask("sts", None, {
            "train": TsvLayout("train.tsv", True, -3, -2, -1),
            "dev": TsvLayout("dev.tsv", True, -3, -2, -1),
            "test": TsvLayout("test.tsv", True, -2, -1, None, index=0)}, standard_tfds("stsb"), {"test": "STS-B.tsv"},
            double_train=True),
        ClassificationTask("qqp", _BINARY, {
            "train": TsvLayout("train.tsv", True, 3, 4, 5),
            "dev": TsvLayout("dev.tsv", True, 3, 4, 5),
            "test": TsvLayout("test.tsv", True, 1, 2, None, index=0)}, standard_tfds("qqp"), {"test": "QQP.tsv"},
            metrics=("accuracy", "f1")),
        ClassificationTask("mnli", _MNLI_LABELS, {
            "train": TsvLayout("train.tsv", True, 8, 9, -1),
            "dev": TsvLayout("dev_matched.tsv", True, 8, 9, -1),
            "dev_mismatched": TsvLayout("dev_mismatched.tsv", True, 8, 9, -1),
            "test": TsvLayout("test_matched.tsv", True, 8, 9, None, index=0),
            "test_mismatched": TsvLayout("test_mismatched.tsv", True, 8, 9, None, index=0),
            "diagnostic": TsvLayout("diagnostic.tsv", True, 1, 2, None, index=0)}, {
            "train": tfds_source("mnli", "train"), "dev": tfds_source("mnli", "validation_matched"),
            "dev_mismatched": tfds_source("mnli", "validation_mismatched"),
            "test": tfds_source("mnli", "test_matched"), "test_mismatched": tfds_source("mnli", "test_mismatched"),
            "diagnostic": tfds_source("ax", "test")},
            {"test": "MNLI-m.tsv", "test_mismatched": "MNLI-mm.tsv", "diagnostic": "AX.tsv"}),
        ClassificationTask("qnli", _ENTAILMENT, _pair_layouts(), standard_tfds("qnli"), {"test": "QNLI.tsv"}),
        ClassificationTask("rte", _ENTAILMENT, _pair_layouts(), standard_tfds("rte"), {"test": "RTE.tsv"}),
        ClassificationTask("wnli", _BINARY, _pair_layouts(), standard_tfds("wnli"), {"test": "WNLI.tsv"}),
        SquadTask("squadv1", version_2=False, tfds_name="squad/v1.1"),
        SquadTask("squad", version_2=True, tfds_name="squad/v2.0"),
        MrqaTask("newsqa"),
        MrqaTask("naturalqs"),
        MrqaTask("triviaqa"),
        MrqaTask("searchqa"),
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
