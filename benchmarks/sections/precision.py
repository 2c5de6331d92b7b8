"""Mixed precision against float32: ELECTRA step tokens/s and a short run's loss curve."""

import numpy as np

from benchmarks.machine import MatmulProbe
from benchmarks.options import Options, Shapes
from benchmarks.timing import Report, interleaved, median
from benchmarks.workloads import TrainStep, Workspace

def precision_section(workspace: Workspace, options: Options, shapes: Shapes, report: Report, half: str):
    """float32 against `half` mixed precision: ELECTRA step tokens/s and a short run's loss curve.

    The noise yardstick is a second float32 run that differs only in its seed (initial weights,
    dropout): the half-precision curve should be no further from float32 than that one is.
    """
    size = "small"
    report.line(f"\n== mixed precision: {half} against float32 ({size if not options.quick else 'tiny'}, "
                f"ELECTRA step, batch {shapes.train_batch} x {shapes.seq_length}) ==")
    runs = {
        "float32": TrainStep(workspace.hparams(size, shapes, options, bert=False, electra=True), options,
                             "float32", batches=8),
        "float32 seed 1": TrainStep(workspace.hparams(size, shapes, options, bert=False, electra=True, seed=1),
                                    options, "float32", batches=8),
        half: TrainStep(workspace.hparams(size, shapes, options, bert=False, electra=True), options, half,
                        batches=8),
    }
    curves = {name: [] for name in runs}
    steps = 4 if options.quick else options.precision_steps
    for _ in range(steps):  # interleaved: one step of each run in turn, timed
        for name, step in runs.items():
            curves[name].append(step(1))
    probes = {"float32 matmul": MatmulProbe("float32", options), f"{half} matmul": MatmulProbe(half, options)}
    times = interleaved(dict({name: runs[name] for name in ("float32", half)}, **probes), options.repeats)
    speedup = median(times["float32"]) / median(times[half])
    peak_ratio = (probes[f"{half} matmul"].flops_per_second(times[f"{half} matmul"])
                  / probes["float32 matmul"].flops_per_second(times["float32 matmul"]))
    key = "mlm_loss"

    def curve(name):
        return np.array([c[key] for c in curves[name]])

    tail = slice(steps // 2, None)
    half_gap = float(np.mean(np.abs(curve(half) - curve("float32"))[tail]))
    seed_gap = float(np.mean(np.abs(curve("float32 seed 1") - curve("float32"))[tail]))
    every = max(1, steps // 8)
    report.line("step          " + "  ".join(f"{i + 1:>6}" for i in range(0, steps, every)))
    for name in runs:
        report.line(f"{name[:16]:<16}" + "  ".join(f"{v:>6.3f}" for v in curve(name)[::every]) + f"  ({key})")
    report.line(f"mean |{half} - float32| over the second half {half_gap:.3f}; float32 seed-to-seed "
                f"{seed_gap:.3f}; loss fell {curve('float32')[0]:.2f} -> {curve('float32')[-1]:.2f}")
    report.line(f"RATIO {half}/float32 ELECTRA step tokens/s = {speedup:.2f} (matmul peak ratio {peak_ratio:.2f})")
    return speedup, half_gap, seed_gap, peak_ratio
