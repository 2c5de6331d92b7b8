"""The goal verdicts of a benchmark run, from the figures the sections returned."""

import dataclasses

from benchmarks.machine import has_amx
from benchmarks.options import Options
from benchmarks.timing import Report


@dataclasses.dataclass
class Figures:
    """What the sections of one run returned (empty or None where a section did not run)."""
    half: str  # the half-precision dtype the precision section compares with float32
    layer: dict = dataclasses.field(default_factory=dict)  # T -> (time ratio, memory ratio)
    sizes: dict = dataclasses.field(default_factory=dict)  # size -> sections.sizes.size_section's dict
    saved_model_ratio: float | None = None
    pipeline_ratio: float | None = None
    precision: tuple | None = None  # (speedup, half gap, seed gap, peak ratio)


def report_goals(figures: Figures, options: Options, report: Report) -> list:
    """Prints every goal's verdict; returns them as (name, met, detail)."""
    report.line("\n== goals ==")
    for length, (time_ratio, memory_ratio) in figures.layer.items():
        report.goal(f"mixed attention fwd+bwd time <= self-attention at T={length}", time_ratio <= 1.0,
                    f"ratio {time_ratio:.2f}")
        report.goal(f"mixed attention activation memory <= self-attention at T={length}, k=9", memory_ratio <= 1.0,
                    f"ratio {memory_ratio:.2f}")
    for size, result in figures.sizes.items():
        for objective, (time_ratio, flop_ratio) in result["ratios"].items():
            report.goal(f"{size} {objective} step time ConvBERT/BERT <= FLOP ratio", time_ratio <= flop_ratio,
                        f"{time_ratio:.2f} vs {flop_ratio:.2f}")
    if "base" in figures.sizes and options.dtype == "float32":
        fraction = figures.sizes["base"]["fraction"]["ConvBERT mlm"]
        report.goal("float32 base train step >= 65% of the float32 matmul peak", fraction >= 0.65,
                    f"{100 * fraction:.0f}% (encoder + MLM head step)")
    if figures.precision is not None:
        _precision_goals(figures, options, report)
    if figures.saved_model_ratio is not None:
        report.goal("SavedModel batch-1 latency within 1.2x of in-process", figures.saved_model_ratio <= 1.2,
                    f"ratio {figures.saved_model_ratio:.2f}")
    if figures.pipeline_ratio is not None:
        report.goal("input pipeline >= 10x the train step's consumption", figures.pipeline_ratio >= 10,
                    f"{figures.pipeline_ratio:.1f}x")
    return report.goals


def _precision_goals(figures: Figures, options: Options, report: Report):
    half = figures.half
    speedup, half_gap, seed_gap, peak_ratio = figures.precision
    no_amx = (" (this CPU has no AMX)" if half == "bfloat16" and "CPU" in options.device.upper()
              and not has_amx() else "")
    report.goal(f"{half} mixed precision >= 2x float32 tokens/s{no_amx}", speedup >= 2.0,
                f"{speedup:.2f}x; the {half}/float32 matmul peak ratio here is {peak_ratio:.2f}")
    report.goal(f"{half} loss curve matches float32 within noise", half_gap <= max(seed_gap, 0.01),
                f"mean |{half} - float32| {half_gap:.3f} vs float32 seed-to-seed {seed_gap:.3f}")
