"""TensorFlow CPU options this package sets before TensorFlow is first imported (no TensorFlow here)."""

import platform

# TensorFlow runs its oneDNN CPU kernels by default only on x86 CPUs with AVX-512 VNNI/BF16 or
# AMX. On the others (AVX2) its own kernels take 1.4-2.0x as long for a train step
# (benchmarks/README.md, "CPUs without AVX-512").
ONEDNN_VARIABLE = "TF_ENABLE_ONEDNN_OPTS"


def set_cpu_defaults(environ, machine: str | None = None) -> None:
    """Turns oneDNN on for x86 CPUs in `environ` unless it already says otherwise.

    It takes effect only before TensorFlow is imported; `TF_ENABLE_ONEDNN_OPTS=0` keeps
    TensorFlow's own kernels.
    """
    machine = (machine or platform.machine()).lower()
    if machine in ("x86_64", "amd64"):
        environ.setdefault(ONEDNN_VARIABLE, "1")
