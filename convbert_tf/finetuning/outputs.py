"""Fine-tuning output files: GLUE test-server TSVs, dev predictions, and results over trials.

Every file is written atomically (a temporary file beside it, then os.replace), so a reader never
sees half a file and a crash never leaves one.

GLUE submission files are named as the GLUE server expects (CoLA.tsv, SST-2.tsv, MRPC.tsv,
STS-B.tsv, QQP.tsv, MNLI-m.tsv, MNLI-mm.tsv, QNLI.tsv, RTE.tsv, WNLI.tsv, AX.tsv for the MNLI
diagnostic set), with the header `index<TAB>prediction`, one row per test example keyed by the
test file's index column. Predictions are label names: 0/1 for CoLA, SST-2, MRPC, QQP and WNLI,
entailment / not_entailment or entailment / neutral / contradiction for the NLI tasks, and for
STS-B the similarity on the 0-5 scale, clipped to [0, 5]. The original wrote only pickles of
logits (§5.4); nothing turned them into submissions.

Results: the original rewrote one "task: metric: value - ..." line per trial. Here `write_results`
writes, for all trials so far, a JSON file {task: {"trials": [...], "median": {...}}} and a
text table with one column per trial and the median, the number ELECTRA reports (§5.4).
"""

from __future__ import annotations

import json
import math
import os
import statistics
import tempfile
from typing import Mapping, Sequence

# (task, split) → GLUE server file name.
GLUE_SUBMISSION_FILES = {
    ("cola", "test"): "CoLA.tsv", ("sst", "test"): "SST-2.tsv", ("mrpc", "test"): "MRPC.tsv",
    ("sts", "test"): "STS-B.tsv", ("qqp", "test"): "QQP.tsv", ("mnli", "test"): "MNLI-m.tsv",
    ("mnli", "test_mismatched"): "MNLI-mm.tsv", ("mnli", "diagnostic"): "AX.tsv", ("qnli", "test"): "QNLI.tsv",
    ("rte", "test"): "RTE.tsv", ("wnli", "test"): "WNLI.tsv",
}


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# The mode open() would give a new file: 0666 less the process's umask.
_PLAIN_FILE_MODE = 0o666 & ~_umask()


def atomic_write_text(path, text: str) -> str:
    """Writes `text` (UTF-8) to `path` through a temporary file in the same directory and
    os.replace; creates the directory. Returns the path."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=directory, prefix="." + os.path.basename(path) + ".", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
        os.chmod(temporary, _PLAIN_FILE_MODE)  # mkstemp makes it 0600; results are for every reader
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise
    return path


def write_json(path, content) -> str:
    """`content` as indented JSON (non-ASCII kept; NaN/inf refused), atomically. Returns the path."""
    return atomic_write_text(path, json.dumps(content, indent=2, ensure_ascii=False, allow_nan=False) + "\n")


def submission_filename(task_name: str, split: str) -> str:
    """The GLUE server's file name for a task's test split (mnli: test, test_mismatched, diagnostic)."""
    try:
        return GLUE_SUBMISSION_FILES[(task_name, split)]
    except KeyError:
        known = ", ".join(f"{t} {s}" for t, s in GLUE_SUBMISSION_FILES)
        raise ValueError(f"no GLUE submission file for task {task_name!r} split {split!r}; there is one for: "
                         f"{known}") from None


def _format_prediction(task, prediction) -> str:
    if task.kind == "regression":
        value = float(prediction)
        if not math.isfinite(value):
            raise ValueError(f"{task.name}: prediction {prediction!r} is not a finite number")
        return f"{min(max(value, 0.0), 5.0):.3f}"
    label = task.label_list[prediction] if not isinstance(prediction, str) else prediction
    if label not in task.label_list:
        raise ValueError(f"{task.name}: prediction {prediction!r} is not one of {', '.join(task.label_list)}")
    return label


def write_glue_submission(output_dir, task, split: str, examples: Sequence, predictions: Sequence) -> str:
    """Writes `<output_dir>/<GLUE file>.tsv` for a test split. Returns its path.

    Args:
      task: a GLUE `tasks.GlueTask`.
      split: test, test_mismatched or diagnostic (mnli).
      examples: the split's examples as read (their guid is the test file's index).
      predictions: aligned with `examples`: label names or ids; floats on 0-5 for sts.
    """
    name = submission_filename(task.name, split)
    if len(predictions) != len(examples):
        raise ValueError(f"{task.name} {split}: {len(predictions)} predictions for {len(examples)} examples")
    lines = ["index\tprediction"]
    lines += [f"{example.guid}\t{_format_prediction(task, prediction)}"
              for example, prediction in zip(examples, predictions)]
    return atomic_write_text(os.path.join(os.fspath(output_dir), name), "\n".join(lines) + "\n")


def write_dev_predictions(path, task, split: str, examples: Sequence, predictions: Sequence) -> str:
    """Writes JSON {"task", "split", "predictions": [{"guid", "prediction", "label"}, ...]} for a
    classification, regression or tagging split (QA uses `qa.write_qa_outputs`). Returns the path."""
    if task.kind == "qa":
        raise ValueError("QA predictions are written by qa.write_qa_outputs")
    if len(predictions) != len(examples):
        raise ValueError(f"{task.name} {split}: {len(predictions)} predictions for {len(examples)} examples")
    rows = []
    for example, prediction in zip(examples, predictions):
        if task.kind == "tagging":
            rows.append({"guid": example.guid, "words": list(example.words), "prediction": list(prediction),
                         "label": list(example.tags)})
        elif task.kind == "regression":
            rows.append({"guid": example.guid, "prediction": float(prediction), "label": example.label})
        else:
            label = task.label_list[prediction] if not isinstance(prediction, str) else prediction
            rows.append({"guid": example.guid, "prediction": label, "label": example.label})
    return write_json(path, {"task": task.name, "split": split, "predictions": rows})


def summarize_trials(trials: Sequence[Mapping[str, Mapping[str, float]]]) -> dict:
    """Trials [{task: {metric: value}}] → {task: {"trials": [{metric: value} per trial that ran the
    task], "median": {metric: median over those trials}}}, tasks in first-seen order."""
    summary = {}
    for trial in trials:
        for task, metrics in trial.items():
            summary.setdefault(task, {"trials": [], "median": {}})["trials"].append(
                {name: float(value) for name, value in metrics.items()})
    for entry in summary.values():
        names = list(dict.fromkeys(name for metrics in entry["trials"] for name in metrics))
        entry["median"] = {name: statistics.median(m[name] for m in entry["trials"] if name in m) for name in names}
    return summary


def format_results_table(summary: Mapping[str, Mapping]) -> str:
    """A fixed-width text table: one row per task and metric, one column per trial, then the median."""
    n_trials = max((len(entry["trials"]) for entry in summary.values()), default=0)
    header = ["task", "metric"] + [f"trial {i + 1}" for i in range(n_trials)] + ["median"]
    rows = []
    for task, entry in summary.items():
        for name, median in entry["median"].items():
            values = [f"{m[name]:.2f}" if name in m else "-" for m in entry["trials"]]
            values += [""] * (n_trials - len(values))
            rows.append([task, name] + values + [f"{median:.2f}"])
    widths = [max(len(row[i]) for row in [header] + rows) for i in range(len(header))]

    def line(cells):
        return "  ".join(cell.ljust(w) if i < 2 else cell.rjust(w) for i, (cell, w) in enumerate(zip(cells, widths)))

    return "\n".join([line(header)] + [line(row) for row in rows]) + "\n"


def write_results(output_dir, trials: Sequence[Mapping[str, Mapping[str, float]]], name: str = "results") -> dict:
    """Writes `<name>.json` (summarize_trials) and `<name>.txt` (the table) into `output_dir`,
    atomically; call after every trial. Returns {"json": path, "txt": path}."""
    summary = summarize_trials(trials)
    output_dir = os.fspath(output_dir)
    return {"json": write_json(os.path.join(output_dir, f"{name}.json"), summary),
            "txt": atomic_write_text(os.path.join(output_dir, f"{name}.txt"), format_results_table(summary))}
