"""The ablation's report: one row per variant, mean ± std over seeds, and paired differences.

Every number comes from the runs' result records (`runs.RunExecution.result`), which copy the
held-out metrics that `trainer.evaluate` wrote and the medians that the fine-tuning runner wrote.
A difference from the baseline (bert) is taken seed by seed, over the seeds both rows have: its
mean, and the sign of each seed's difference in seed order ("+ + -": higher in two seeds, lower
in one), so that a reader sees whether a gap holds seed by seed or only on average.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from typing import Callable, Sequence

# Held-out pretraining metrics at the last step: (key in trainer.evaluate's results, label).
HELD_OUT = (("masked_lm_accuracy", "MLM acc"), ("disc_accuracy", "disc acc"), ("disc_auc_exact", "disc AUC"),
            ("disc_loss", "disc loss"))


@dataclasses.dataclass(frozen=True)
class Column:
    """One column of the report: how to read its value from a run's result, and how to print it."""

    key: str
    label: str
    value: Callable[[dict], float | None]
    digits: str
    fixed: bool = False
    """A property of the variant, the same for every seed (parameters, FLOPs): printed without a
    spread, and compared with the baseline as a ratio."""


def primary_metric(median: dict) -> str:
    """The metric a task is ranked by, as ELECTRA reports: Spearman for STS, F1 for QA, else the
    task's first metric (MCC for CoLA, accuracy for the other GLUE tasks, F1 for chunking)."""
    if "spearman" in median:
        return "spearman"
    if "exact_match" in median:
        return "f1"
    return next(iter(median))


def _task_column(task: str, metric: str) -> Column:
    def value(result):
        entry = result.get("finetuning", {}).get(task)
        return entry["median"].get(metric) if entry else None

    return Column(f"dev/{task}/{metric}", f"{task} {metric}", value, ".2f")


def _held_out_column(key: str, label: str) -> Column:
    return Column(f"held_out/{key}", label, lambda result: result["final"].get(key), ".4f")


def report_columns(results: Sequence[dict]) -> list:
    """Parameters, pretraining FLOPs, wall time, the held-out metrics, then each task's dev score."""
    columns = [Column("parameters", "params", lambda r: r["parameters"]["discriminator"], ",.0f", fixed=True),
               Column("pretraining_flops", "pretrain FLOPs", lambda r: r["pretraining_flops"], ".3g", fixed=True),
               Column("train_seconds", "wall time (s)", lambda r: r["train_seconds"], ".0f")]
    columns += [_held_out_column(key, label) for key, label in HELD_OUT]
    tasks = {}
    for result in results:
        for task, entry in result.get("finetuning", {}).items():
            tasks.setdefault(task, primary_metric(entry["median"]))
    return columns + [_task_column(task, metric) for task, metric in tasks.items()]


def summarize(values: Sequence[float]) -> dict:
    """mean, std (sample standard deviation; None for one value) and n."""
    values = list(values)
    return {"mean": statistics.fmean(values) if values else None,
            "std": statistics.stdev(values) if len(values) > 1 else None, "n": len(values)}


def _sign(difference: float) -> str:
    return "+" if difference > 0 else "-" if difference < 0 else "0"


def paired_difference(values: dict, baseline: dict) -> dict | None:
    """{seed: value} minus the baseline's, seed by seed: the mean, each seed's difference and signs."""
    seeds = sorted(set(values) & set(baseline))
    if not seeds:
        return None
    differences = [values[seed] - baseline[seed] for seed in seeds]
    return {"mean": statistics.fmean(differences), "seeds": seeds, "per_seed": differences,
            "signs": " ".join(_sign(d) for d in differences)}


def aggregate(results: Sequence[dict], variant_names: Sequence[str], baseline: str | None) -> dict:
    """{"baseline", "columns", "rows"}: per variant and column, the values by seed, their summary
    and the paired difference from the baseline."""
    columns = report_columns(results)
    by_variant = {name: {r["seed"]: r for r in results if r["variant"]["name"] == name} for name in variant_names}

    def values(name, column):
        found = {seed: column.value(run) for seed, run in by_variant[name].items()}
        return {seed: value for seed, value in found.items() if value is not None}

    rows = []
    for name in variant_names:
        cells = {}
        for column in columns:
            own = values(name, column)
            per_seed = {str(seed): value for seed, value in sorted(own.items())}
            cells[column.key] = {"per_seed": per_seed, **summarize(own.values())}
            if baseline is not None and name != baseline:
                cells[column.key]["vs_baseline"] = paired_difference(own, values(baseline, column))
        rows.append({"variant": name, "seeds": sorted(by_variant[name]), "cells": cells})
    return {"baseline": baseline, "columns": [{"key": c.key, "label": c.label} for c in columns], "rows": rows,
            "identical_batches": identical_batches(results)}


def identical_batches(results: Sequence[dict]) -> dict:
    """{seed: whether every variant's first training batches had the same digest}."""
    digests = {}
    for result in results:
        digests.setdefault(str(result["seed"]), set()).add(result["batch_digest"])
    return {seed: len(found) == 1 for seed, found in sorted(digests.items())}


def _number(value, digits: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return format(value, digits)


def _cell(cell: dict, column: Column) -> str:
    text = _number(cell["mean"], column.digits)
    return text if cell["std"] is None or column.fixed else f"{text} ± {_number(cell['std'], column.digits)}"


def _difference(cell: dict, column: Column, baseline_cell: dict) -> str:
    paired = cell.get("vs_baseline")
    if not paired:
        return "-"
    if column.fixed:
        return f"×{cell['mean'] / baseline_cell['mean']:.3f}" if baseline_cell["mean"] else "-"
    return f"{format(paired['mean'], '+' + column.digits)} ({paired['signs']})"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def markdown(report: dict, columns: Sequence[Column], notes: Sequence[str] = ()) -> str:
    """The report as Markdown: the table of means ± std, then the paired differences from the baseline."""
    header = ["variant", "seeds"] + [c.label for c in columns]
    rows = [[row["variant"], str(len(row["seeds"]))] + [_cell(row["cells"][c.key], c) for c in columns]
            for row in report["rows"]]
    lines = _table(header, rows)
    baseline = next((row for row in report["rows"] if row["variant"] == report["baseline"]), None)
    others = [row for row in report["rows"] if row is not baseline]
    if baseline is not None and others:
        lines += ["", f"Difference from {baseline['variant']}, paired by seed: the mean difference, then the sign "
                      "of each seed's difference in seed order (parameters and FLOPs: the ratio).", ""]
        lines += _table(["variant"] + [c.label for c in columns],
                        [[row["variant"]] + [_difference(row["cells"][c.key], c, baseline["cells"][c.key])
                                             for c in columns] for row in others])
    return "\n".join(list(notes) + ([""] if notes else []) + lines) + "\n"
