"""`python -m benchmarks.run --backend=... --device=cpu|gpu [--compare_hf]`: flags, workers, table.

  python -m benchmarks.run --backend=jax --device=cpu                  # small, 16 x 128, float32
  python -m benchmarks.run --backend=jax,torch,tensorflow --quick      # every backend, tiny model
  python -m benchmarks.run --backend=jax --device=gpu --dtype=bfloat16 --sizes=small,base --compare_hf

Imports neither Keras nor TensorFlow: each backend runs in its own worker process, started
with KERAS_BACKEND set (Keras reads it once, at import), and Hugging Face's models in one more.
On --device=cpu the jax and torch workers see no GPU (JAX_PLATFORMS=cpu, CUDA_VISIBLE_DEVICES
empty), so the figures are the CPU's even on a GPU machine.
"""

import argparse
import json
import os
import subprocess
import sys

from benchmarks.backends import figures

SIZES = ("small", "medium-small", "base")  # convbert_tf.config.MODEL_SIZES, checked again by the worker
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def wants_backends(argv) -> bool:
    """Whether benchmarks.run's command line asks for this mode (a --backend or --compare_hf flag)."""
    return any(a.split("=")[0] in ("--backend", "--compare_hf") for a in argv)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", default="tensorflow",
                        help=f"comma-separated Keras backends among {', '.join(figures.BACKENDS)}")
    parser.add_argument("--device", default="cpu", help=f"one of {', '.join(figures.DEVICES)}")
    parser.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"),
                        help="bfloat16 = Keras mixed_bfloat16 (torch autocast for Hugging Face's models)")
    parser.add_argument("--sizes", default="small", help=f"comma-separated among {', '.join(SIZES)}")
    parser.add_argument("--batch", type=int, default=None, help="default 128 on gpu, 16 on cpu")
    parser.add_argument("--seq_length", type=int, default=128)
    parser.add_argument("--steps", type=int, default=10, help="timed steps per variant (the median is reported)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first (tracing, compiling)")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads of TensorFlow and torch")
    parser.add_argument("--jit_compile", action="store_true", help="tensorflow: also time the step under XLA")
    parser.add_argument("--no_torch_compile", dest="torch_compile", action="store_false",
                        help="torch and Hugging Face: time the eager step only")
    parser.add_argument("--compare_hf", action="store_true",
                        help="also time Hugging Face's torch ConvBERT and BERT (needs transformers)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="run the workers this many times in turn (A, B, A, B); medians over the rounds, "
                             "so that a load that changes between processes weighs on every side alike")
    parser.add_argument("--quick", action="store_true", help="tiny model, batch 4 x 32, 2 steps: a smoke run")
    return check(parser, parser.parse_args(argv))


def check(parser, args) -> dict:
    """The flags as the workers' options dict; a clear parser error for anything unknown."""
    backends = tuple(b.strip() for b in args.backend.split(",") if b.strip())
    if not backends or any(b not in figures.BACKENDS for b in backends):
        parser.error(f"--backend={args.backend}: use one or more of {', '.join(figures.BACKENDS)}")
    if args.device not in figures.DEVICES:
        parser.error(f"--device={args.device}: use cpu or gpu here (TensorFlow device names such as /GPU:0 "
                     f"belong to the TensorFlow suite, without --backend)")
    sizes = tuple(s.strip() for s in args.sizes.split(",") if s.strip())
    if not sizes or any(s not in SIZES for s in sizes):
        parser.error(f"--sizes={args.sizes}: use a comma-separated list among {', '.join(SIZES)}")
    batch, seq_length = figures.DEFAULT_SHAPES[args.device]
    batch = 4 if args.quick else (batch if args.batch is None else args.batch)
    seq_length = 32 if args.quick else args.seq_length
    for name, value in (("--batch", batch), ("--seq_length", seq_length), ("--steps", args.steps),
                        ("--threads", args.threads), ("--rounds", args.rounds)):
        if value < 1:
            parser.error(f"{name} must be >= 1")
    if args.warmup < 0:
        parser.error("--warmup must be >= 0")
    return dict(backends=backends, device=args.device, dtype=args.dtype, sizes=sizes, batch=batch,
                seq_length=seq_length, predictions=figures.masked_positions(seq_length),
                steps=2 if args.quick else args.steps, warmup=1 if args.quick else args.warmup,
                threads=args.threads, jit_compile=args.jit_compile, torch_compile=args.torch_compile,
                compare_hf=args.compare_hf, quick=args.quick, rounds=args.rounds)


def worker_env(backend: str, device: str) -> dict:
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "") if env.get("PYTHONPATH") else ROOT
    if device == "cpu" and backend != "tensorflow":
        env.update(JAX_PLATFORMS="cpu", CUDA_VISIBLE_DEVICES="")
    return env


def launch(module: str, options: dict, backend: str) -> dict:
    """Runs one worker, its lines passed through; its RESULT dict (exits when the worker fails)."""
    process = subprocess.Popen([sys.executable, "-m", module, json.dumps(dict(options, backend=backend))],
                               cwd=ROOT, env=worker_env(backend, options["device"]), stdout=subprocess.PIPE, text=True)
    result = None
    for line in process.stdout:
        if line.startswith("RESULT "):
            result = json.loads(line[len("RESULT "):])
        else:
            print(line, end="", flush=True)
    if process.wait() != 0 or result is None:
        sys.exit(process.returncode or 1)
    return result


def one_round(options: dict) -> list:
    results = [launch("benchmarks.backends.worker", options, backend) for backend in options["backends"]]
    if options["compare_hf"]:  # the models as the first worker described them (it has convbert_tf)
        described = {s["size"]: s["hf_models"] for s in results[0]["sizes"]}
        results.append(launch("benchmarks.backends.hf_worker", dict(options, hf_models=described), "torch"))
    return results


def main(argv=None) -> list:
    options = parse_args(argv)
    rounds = [one_round(options) for _ in range(options["rounds"])]
    results = [figures.median_of_rounds([r[i] for r in rounds]) for i in range(len(rounds[0]))]
    print_summary(results, options)
    return results


def print_summary(results: list, options: dict):
    print(f"\n== side by side (medians over {options['rounds']} round(s)): {options['device']}, "
          f"{options['dtype']}, batch {options['batch']} x "
          f"{options['seq_length']}, MLM step (encoder + MLM head at {options['predictions']} positions + AdamW) ==")
    for size in options["sizes"]:
        per_size = [{"source": r["source"], "rows": s["rows"]} for r in results for s in r["sizes"]
                    if s["size"] == size]
        print(f"\n{size if not options['quick'] else size + ' (tiny, --quick)'}:")
        print("\n".join(figures.side_by_side(per_size)))
    for result in results:
        if result.get("skipped"):
            print(f"{result['source']}: skipped ({result['skipped']})")
