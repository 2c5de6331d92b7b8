r"""One command for every figure of benchmarks/README.md: ConvBERT against a same-size BERT.

  python -m benchmarks.run                      # small and medium-small, float32, 2 CPU threads
  python -m benchmarks.run --base               # ... and base
  python -m benchmarks.run --jit_compile        # ... and the train steps compiled with XLA
  python -m benchmarks.run --device=/GPU:0 --dtype=bfloat16 --jit_compile   # on a GPU
  python -m benchmarks.run --quick              # a tiny smoke run (seconds), not a measurement
  python -m benchmarks.run --backend=jax|torch|tensorflow --device=cpu|gpu [--compare_hf]
                                                # the MLM train step on a Keras backend (benchmarks/backends)

Prints the machine, its measured matmul peak, a layer-level table (mixed attention against
self-attention at T = 128 and 512), per size the train-step (encoder + MLM head, full ELECTRA
step), inference and memory figures with ConvBERT/BERT ratios, the SavedModel latency, the
input pipeline's rate, a mixed-precision check, and which goals are met.
"""

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def parse_args(argv=None):
    from convbert_tf.config import CONV_IMPLEMENTATIONS, MODEL_SIZES
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="small,medium-small",
                        help="comma-separated presets among small, medium-small, base")
    parser.add_argument("--base", action="store_true", help="add the base size")
    parser.add_argument("--repeats", type=int, default=5, help="interleaved repeats per figure (medians)")
    parser.add_argument("--dtype", default="float32", choices=("float32", "bfloat16", "float16"),
                        help="compute dtype (bfloat16/float16 = Keras mixed precision)")
    parser.add_argument("--jit_compile", action="store_true",
                        help="also time every train step compiled with XLA, interleaved with the uncompiled one")
    parser.add_argument("--device", default="/CPU:0", help="TF device, e.g. /CPU:0 or /GPU:0")
    parser.add_argument("--threads", type=int, default=2, help="TF intra-op threads (CPU)")
    parser.add_argument("--inter_op_threads", type=int, default=None,
                        help="TF inter-op threads (ops run side by side); default: --threads, which is "
                             "TensorFlow's own default on a machine with that many cores, and what the "
                             "run_* scripts get. 1 runs one op at a time")
    parser.add_argument("--conv_implementation", default="shifted_xla", choices=CONV_IMPLEMENTATIONS,
                        help="span convolution of the ConvBERT figures (the layer table shows them all); "
                             "the MLM step is also timed with the 'unfold' reference")
    parser.add_argument("--precision_steps", type=int, default=40, help="steps of the mixed-precision loss curve")
    parser.add_argument("--sections", default="all",
                        help="comma-separated among layer, fusions, sizes, serving, pipeline, precision (serving and "
                             "pipeline also run the sizes they measure against), or all")
    parser.add_argument("--quick", action="store_true", help="tiny model and shapes, one repeat: a smoke run")
    args = parser.parse_args(argv)
    sizes = [s.strip() for s in args.sizes.split(",") if s.strip()]
    if args.base and "base" not in sizes:
        sizes.append("base")
    unknown = [s for s in sizes if s not in MODEL_SIZES]
    if unknown:
        parser.error(f"--sizes: unknown size(s) {unknown}; use {list(MODEL_SIZES)}")
    from benchmarks.options import SECTIONS
    sections = SECTIONS if args.sections == "all" else tuple(x.strip() for x in args.sections.split(",") if x.strip())
    if not sections or any(x not in SECTIONS for x in sections):
        parser.error(f"--sections: use 'all' or a comma-separated list among {list(SECTIONS)}")
    args.sections = sections
    if args.repeats < 1:
        parser.error("--repeats must be >= 1")
    if args.threads < 1:
        parser.error("--threads must be >= 1")
    if args.inter_op_threads is None:
        args.inter_op_threads = args.threads
    if args.inter_op_threads < 1:
        parser.error("--inter_op_threads must be >= 1")
    return args, tuple(sizes)


def run_all(options, out) -> list:
    """Runs the chosen sections, prints the figures and the goal verdicts; returns the verdicts."""
    from benchmarks import goals, machine, options as options_module, timing, workloads
    report = timing.Report(out)
    shapes = options_module.QUICK_SHAPES if options.quick else options_module.Shapes()
    report.line(f"machine: {machine.machine_description(options)}")
    report.line(f"figures are medians of {options.repeats} interleaved repeats (+-: half the range, in % "
                "of the median); tokens/s count every position of the batch")
    workspace = workloads.Workspace(options, shapes)
    half = "float16" if "GPU" in options.device.upper() and options.dtype == "float16" else "bfloat16"
    figures = goals.Figures(half=half)
    try:
        machine.matmul_peak(options.dtype, options, report)
        _run_sections(figures, workspace, options, shapes, report)
    finally:
        workspace.close()
    return goals.report_goals(figures, options, report)


def _run_sections(figures, workspace, options, shapes, report):
    """The chosen sections in order, each timed; their figures go into `figures`."""
    from benchmarks.sections import fusions, layer, optimizer, pipeline, precision, serving, sizes, window_sum
    chosen, dtype = set(options.sections), options.dtype
    run_sizes = ("small",) if options.quick else options.sizes
    if "layer" in chosen:
        with report.section():
            figures.layer = layer.attention_layer_section(options, shapes, report, dtype)
        with report.section():
            window_sum.window_sum_section(options, shapes, report, dtype)
    if "fusions" in chosen:
        for size in run_sizes:
            with report.section():
                fusions.fusions_section(size, options, shapes, report, dtype)
                optimizer.optimizer_section(size, options, report)
    if chosen & {"sizes", "serving", "pipeline"}:  # serving and pipeline use a size's figures
        for size in run_sizes:
            with report.section():
                figures.sizes[size] = sizes.size_section(size, workspace, options, shapes, report, dtype)
    if "serving" in chosen:
        with report.section():
            figures.saved_model_ratio = serving.savedmodel_section(
                next(iter(figures.sizes.values())), workspace, options, report)
    if "pipeline" in chosen:
        consumed = max(result["max_tokens_per_second"] for result in figures.sizes.values())
        with report.section():
            figures.pipeline_ratio = pipeline.input_pipeline_section(workspace, options, shapes, report, consumed)
    if "precision" in chosen:
        with report.section():
            figures.precision = precision.precision_section(workspace, options, shapes, report, figures.half)


def main(argv=None):
    from benchmarks.backends import cli
    if cli.wants_backends(sys.argv[1:] if argv is None else argv):  # before TensorFlow is imported
        cli.main(argv)
        return
    args, sizes = parse_args(argv)
    import tensorflow as tf
    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(args.inter_op_threads)
    from benchmarks.machine import device_problem
    from benchmarks.options import Options
    problem = device_problem(args.device)
    if problem:
        sys.exit(f"benchmarks.run: --device={args.device}: {problem}")
    options = Options(sizes=sizes, repeats=1 if args.quick else args.repeats, dtype=args.dtype,
                      jit_compile=args.jit_compile, device=args.device, threads=args.threads,
                      inter_op_threads=args.inter_op_threads,
                      conv_implementation=args.conv_implementation, quick=args.quick,
                      precision_steps=args.precision_steps, sections=args.sections)
    run_all(options, sys.stdout)


if __name__ == "__main__":
    main()
