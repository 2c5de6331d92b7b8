r"""Memory over a long run: the RSS of a tiny pretraining run, sampled as it trains.

  python -m benchmarks.memory_flat                 # 2,000 steps (a few minutes on 2 CPU cores)
  python -m benchmarks.memory_flat --steps=500 --iterations_per_loop=5

Writes tiny records and a vocab to a temporary directory, runs run_pretraining.py on them as a
child process (2 layers, hidden 32, batch 8 x 32; a log line, TensorBoard summaries and a
compiled-loop call every --iterations_per_loop steps, a checkpoint every --checkpoint_every),
and reads the child's VmRSS from /proc/<pid>/status each time it logs a step. Prints a table of
step against RSS, the growth from --baseline_step to the end (MiB, MiB per 1,000 steps), the
least-squares slopes through the samples (all of them, and the last half), and a verdict: flat
when neither the end-to-end growth nor the last half's slope exceeds --flat_mib_per_1000 MiB per
1,000 steps. A measurement, not a timed test.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The model of tests/pretraining_data.py: 2 layers, 32 wide, 64 tokens, sequences of 32.
VOCAB_SIZE, SEQ_LENGTH = 64, 32
MODEL = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 64,
         "max_position_embeddings": SEQ_LENGTH}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=2000, help="train steps of the run")
    parser.add_argument("--iterations_per_loop", type=int, default=10,
                        help="steps per compiled-loop call; also the logging and sampling interval")
    parser.add_argument("--checkpoint_every", type=int, default=250, help="save_checkpoints_steps of the run")
    parser.add_argument("--table_every", type=int, default=100, help="steps between rows of the printed table")
    parser.add_argument("--baseline_step", type=int, default=200,
                        help="growth is measured from here (the first steps trace and warm up)")
    parser.add_argument("--flat_mib_per_1000", type=float, default=5.0,
                        help="largest growth in MiB per 1,000 steps that counts as flat")
    args = parser.parse_args(argv)
    if args.steps <= args.baseline_step:
        parser.error(f"--steps ({args.steps}) must be larger than --baseline_step ({args.baseline_step})")
    if args.iterations_per_loop < 1 or args.table_every % args.iterations_per_loop:
        parser.error(f"--table_every ({args.table_every}) must be a multiple of --iterations_per_loop "
                     f"({args.iterations_per_loop})")
    return args


def write_inputs(data_dir: str) -> None:
    """vocab.txt and records enough for a few epochs' variety (the input pipeline repeats them)."""
    from benchmarks.workloads import write_data
    os.makedirs(os.path.join(data_dir, "pretrain_tfrecords"), exist_ok=True)
    records = write_data(data_dir, VOCAB_SIZE, SEQ_LENGTH, records=2048)
    os.replace(records, os.path.join(data_dir, "pretrain_tfrecords", "pretrain_data.tfrecord"))


def hparams(args) -> dict:
    return {"model_size": "small", "vocab_size": VOCAB_SIZE, "max_seq_length": SEQ_LENGTH, "train_batch_size": 8,
            "embedding_size": 16, "generator_hidden_size": 0.5, "learning_rate": 2e-3, "num_warmup_steps": 20,
            "num_train_steps": args.steps, "iterations_per_loop": args.iterations_per_loop,
            "log_every_steps": args.iterations_per_loop, "save_checkpoints_steps": args.checkpoint_every,
            "export_at_end": False, "model_hparam_overrides": MODEL}


def rss_mib(pid: int) -> float:
    """The resident set size of a process, from /proc/<pid>/status (Linux)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024  # kB -> MiB
    raise RuntimeError(f"no VmRSS in /proc/{pid}/status")


def sample_run(args, data_dir: str) -> tuple[list, float]:
    """Runs the pretraining child; returns [(step, RSS MiB)] sampled at each logged step, and seconds."""
    command = [sys.executable, "-u", os.path.join(ROOT, "run_pretraining.py"), f"--data_dir={data_dir}",
               "--model_name=memory", f"--hparams={json.dumps(hparams(args))}"]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    began = time.perf_counter()
    child = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    samples = []
    for line in child.stdout:
        if line.startswith("step "):
            step = int(line.split()[1].split("/")[0])
            samples.append((step, rss_mib(child.pid)))
            if step % (args.steps // 10 or 1) < args.iterations_per_loop:
                print(f"  ... step {step}/{args.steps}", file=sys.stderr, flush=True)
    err = child.stderr.read()
    if child.wait() != 0:
        raise SystemExit(f"the pretraining run failed (exit {child.returncode}):\n{err[-3000:]}")
    return samples, time.perf_counter() - began


def slope_per_1000(points: list) -> float:
    """MiB per 1,000 steps of the least-squares line through (step, MiB) points."""
    n = len(points)
    mean_x = sum(x for x, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    sxx = sum((x - mean_x) ** 2 for x, _ in points)
    sxy = sum((x - mean_x) * (y - mean_y) for x, y in points)
    return 1000 * sxy / sxx if sxx else 0.0


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def report(args, samples: list, seconds: float) -> bool:
    """Prints the table, the growth and the verdict; returns whether memory stayed flat."""
    print(f"memory over a {args.steps}-step tiny pretraining run ({cpu_model()}, {os.cpu_count()} cores, "
          f"{time.strftime('%Y-%m-%d')}, {seconds:.0f} s)")
    print("| step | RSS MiB |\n|---:|---:|")
    for step, mib in samples:
        if step % args.table_every == 0 or step == samples[0][0] or step == samples[-1][0]:
            print(f"| {step} | {mib:.1f} |")
    after = [(s, m) for s, m in samples if s >= args.baseline_step]
    start_step, start_mib = after[0]
    end_step, end_mib = after[-1]
    growth = end_mib - start_mib
    end_to_end = 1000 * growth / (end_step - start_step)
    slope = slope_per_1000(after)
    last_half = [(s, m) for s, m in after if s >= (start_step + end_step) / 2]
    last_half_slope = slope_per_1000(last_half)
    peak = max(m for _, m in after)
    print(f"growth from step {start_step} to {end_step}: {growth:+.1f} MiB ({start_mib:.1f} -> {end_mib:.1f}, "
          f"peak {peak:.1f}); {end_to_end:+.2f} MiB per 1,000 steps end to end")
    print(f"least-squares slope: {slope:+.2f} MiB per 1,000 steps over {len(after)} samples from step "
          f"{start_step}, {last_half_slope:+.2f} over the last half ({len(last_half)} samples from step "
          f"{last_half[0][0]})")
    # A leak rises steadily: flat means neither the end-to-end growth nor the recent trend exceeds the bound
    # (a one-time drop, when the allocator hands memory back, makes the whole-run slope negative).
    worst = max(end_to_end, last_half_slope)
    flat = worst <= args.flat_mib_per_1000
    print(f"verdict: {'FLAT' if flat else 'GROWING'} (at most {worst:+.2f} MiB per 1,000 steps; flat means at "
          f"most {args.flat_mib_per_1000:g})")
    return flat


def main(argv=None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="convbert-memory-") as data_dir:
        write_inputs(data_dir)
        samples, seconds = sample_run(args, data_dir)
    if not [s for s, _ in samples if s >= args.baseline_step]:
        raise SystemExit(f"no step was logged at or after --baseline_step {args.baseline_step}")
    return 0 if report(args, samples, seconds) else 1


if __name__ == "__main__":
    sys.exit(main())
