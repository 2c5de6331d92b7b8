"""Fine-tuning results over trials: a JSON summary and a text table with the median.

The original rewrote one "task: metric: value - ..." line per trial. Here `write_results`
writes, for all trials so far, a JSON file {task: {"trials": [...], "median": {...}}} and a
text table with one column per trial and the median, the number ELECTRA reports (the median of
several fine-tuning runs; Clark et al. 2020). Both are written atomically (`convbert_tf.io`).
Each task's own prediction and submission files are the Task's (`tasks`).
"""

from __future__ import annotations

import os
import statistics
from typing import Mapping, Sequence

from convbert_tf.io import atomic_write_json, atomic_write_text


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
    return {"json": atomic_write_json(os.path.join(output_dir, f"{name}.json"), summary),
            "txt": atomic_write_text(os.path.join(output_dir, f"{name}.txt"), format_results_table(summary))}
