"""The report's figures: held-out discriminator loss against pretraining FLOPs, and the dev scores.

Each seed is drawn faintly and the mean over seeds boldly, one colour per variant, so that the
spread between seeds is as visible as the gap between variants. PNGs are written under a
temporary name and renamed into place.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from convbert_tf.plotting import save_png


def _figure(panels: int, width: float = 5.2):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width * panels, 4.0), dpi=110, layout="constrained")
    FigureCanvasAgg(figure)
    return figure, figure.subplots(1, panels, squeeze=False)[0]


def _by_variant(results: Sequence[dict], variant_names: Sequence[str]) -> dict:
    return {name: sorted((r for r in results if r["variant"]["name"] == name), key=lambda r: r["seed"])
            for name in variant_names}


def plot_loss_vs_flops(results: Sequence[dict], variant_names: Sequence[str], output: str,
                       metric: str = "disc_loss", title: str = "held-out discriminator loss") -> str:
    """One line per variant and seed of `metric` at each eval point against the FLOPs spent so far."""
    figure, (ax,) = _figure(1, width=6.4)
    for index, (name, runs) in enumerate(_by_variant(results, variant_names).items()):
        colour = f"C{index}"
        curves = [([p["flops"] for p in r["curve"]], [p["metrics"][metric] for p in r["curve"]]) for r in runs]
        for flops, values in curves:
            ax.plot(flops, values, color=colour, alpha=0.3, linewidth=1, marker=".")
        if curves and len({len(c[0]) for c in curves}) == 1:
            ax.plot(np.mean([c[0] for c in curves], axis=0), np.mean([c[1] for c in curves], axis=0), color=colour,
                    linewidth=2.2, marker="o", label=f"{name} (mean of {len(curves)} seed{'s' * (len(curves) > 1)})")
    ax.set_xlabel("pretraining FLOPs")
    ax.set_ylabel(f"{metric} (held-out)")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save_png(figure, output)


def plot_dev_scores(report: dict, output: str) -> str | None:
    """One panel per fine-tuning score: per variant the mean over seeds with ± std and a dot per seed.
    None (nothing written) when the report has no fine-tuning scores."""
    columns = [c for c in report["columns"] if c["key"].startswith("dev/")]
    if not columns:
        return None
    figure, axes = _figure(len(columns), width=max(3.6, 1.1 * len(report["rows"]) + 1.5))
    for ax, column in zip(axes, columns):
        for index, row in enumerate(report["rows"]):
            cell = row["cells"][column["key"]]
            if cell["mean"] is None:
                continue
            ax.errorbar(index, cell["mean"], yerr=cell["std"] or 0.0, color=f"C{index}", fmt="D", markersize=8,
                        capsize=5, linewidth=2)
            seeds = list(cell["per_seed"].values())
            ax.scatter(np.full(len(seeds), index + 0.18), seeds, color=f"C{index}", alpha=0.5, s=14)
        ax.set_xticks(range(len(report["rows"])), [row["variant"] for row in report["rows"]], rotation=20,
                      fontsize=8)
        ax.set_xlim(-0.5, len(report["rows"]) - 0.3)
        ax.set_title(f"dev {column['label']} (median over trials)", fontsize=10)
        ax.grid(alpha=0.3, axis="y")
    return save_png(figure, output)
