#!/usr/bin/env bash
# The issue's GPU table in one run: bf16, batch 128 x 128, ConvBERT and a same-size BERT at
# small and base, this project's step on the JAX backend (jax.jit, XLA) beside Hugging Face's
# torch ConvBERT and BERT, eager and torch.compile, each against a bf16 matmul peak measured
# in the same run. Needs JAX and PyTorch with CUDA, keras and transformers; not TensorFlow.
#
#   bash benchmarks/gpu_run.sh            # on a GPU machine (a few minutes)
#   bash benchmarks/gpu_run.sh --quick    # the same commands on the CPU with a tiny model (a smoke run)
#
# A machine without a package index: set WHEELS to a folder of wheels (keras, transformers and
# their pure-Python needs); they are installed from there first, with --no-index.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ -n "${WHEELS:-}" ]]; then
  python -m pip install -q --no-index --find-links "$WHEELS" keras transformers
fi

if [[ "${1:-}" == "--quick" ]]; then
  flags=(--device=cpu --dtype=float32 --sizes=small --quick)
else
  flags=(--device=gpu --dtype=bfloat16 --sizes=small,base --batch=128 --seq_length=128 --steps=20 --warmup=5)
fi

python - <<'PY'
import importlib, platform, subprocess, sys
print(f"python {platform.python_version()} on {platform.node()}")
for name in ("jax", "jaxlib", "torch", "keras", "transformers", "numpy"):
    try:
        print(f"{name} {importlib.import_module(name).__version__}")
    except ImportError as e:
        print(f"{name}: not installed ({e})")
try:
    print(subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"],
                         capture_output=True, text=True, timeout=30).stdout.strip() or "nvidia-smi: no output")
except (OSError, subprocess.TimeoutExpired) as e:
    print(f"nvidia-smi: {e}")
with open("/proc/cpuinfo") as f:
    print(next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), "unknown CPU"))
PY

python -m benchmarks.run --backend=jax --compare_hf "${flags[@]}"
