"""Machine probes: the device check, the description line, peak memory and the matmul peak.

Legend: n the side of the probe's square matmuls.
"""

import contextlib
import os
import platform

import keras
import tensorflow as tf

from benchmarks.options import Options
from benchmarks.timing import Report, interleaved, median

def memory_device(device: str) -> str:
    """'/device:GPU:0' or '/GPU:0' -> 'GPU:0', as get_memory_info names devices."""
    return device.split("device:")[-1].lstrip("/").upper()


def step_peak_bytes(fn, device: str):
    """Peak bytes the TF allocator held during one call, above what it held before (None if unknown)."""
    name = memory_device(device)
    try:
        tf.config.experimental.reset_memory_stats(name)
        before = tf.config.experimental.get_memory_info(name)["current"]
        fn()
        peak = tf.config.experimental.get_memory_info(name)["peak"]
    except (ValueError, tf.errors.InvalidArgumentError):
        return None
    return peak - before


def mib(value):
    return "n/a" if value is None else f"{value / 2 ** 20:,.0f}"


def device_problem(device: str):
    """None if TensorFlow has `device` (e.g. /CPU:0, /GPU:0); else what is wrong, in words.

    Without this check TensorFlow's soft placement would run everything on the CPU and the
    figures would be printed under the GPU's name.
    """
    try:
        wanted = tf.DeviceSpec.from_string(device)
    except ValueError as e:
        return f"not a TensorFlow device name ({e}); use e.g. /CPU:0 or /GPU:0"
    present = [d.name for d in tf.config.list_logical_devices()]
    for name in present:
        spec = tf.DeviceSpec.from_string(name)
        if spec.device_type == (wanted.device_type or "").upper() and spec.device_index == (wanted.device_index or 0):
            return None
    return (f"TensorFlow sees no such device here (it sees {', '.join(present)}); on a GPU machine check "
            f"that this TensorFlow build finds CUDA (tf.config.list_physical_devices('GPU')), or leave "
            f"--device out to measure on the CPU")


def accelerator_names() -> list:
    """'GPU:0 NVIDIA H100 80GB HBM3 (compute capability 9.0)' and the like, one per GPU."""
    names = []
    for gpu in tf.config.list_physical_devices("GPU"):
        details = tf.config.experimental.get_device_details(gpu)
        capability = details.get("compute_capability")
        names.append(f"{gpu.name.split('physical_device:')[-1]} {details.get('device_name', 'unknown card')}"
                     + (f" (compute capability {capability[0]}.{capability[1]})" if capability else ""))
    return names


def onednn_state() -> str:
    """'oneDNN on' / 'oneDNN off': whether TensorFlow runs its oneDNN CPU kernels (TF_ENABLE_ONEDNN_OPTS)."""
    try:
        from tensorflow.python.util import _pywrap_util_port
        return "oneDNN on" if _pywrap_util_port.IsMklEnabled() else "oneDNN off"
    except (ImportError, AttributeError):  # a private module: name the variable instead
        return f"TF_ENABLE_ONEDNN_OPTS={os.environ.get('TF_ENABLE_ONEDNN_OPTS', 'unset')}"


def machine_description(options: Options) -> str:
    model, flags = "unknown", set()
    with contextlib.suppress(OSError):
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name") and model == "unknown":
                    model = line.split(":", 1)[1].strip()
                if line.startswith("flags") and not flags:
                    flags = set(line.split(":", 1)[1].split())
    vector = [f for f in ("avx512f", "avx512_bf16", "amx_bf16", "amx_tile", "avx512_fp16") if f in flags]
    gpus = accelerator_names()
    return (f"{platform.node()}: {model}, {os.cpu_count()} CPUs visible ({', '.join(vector) or 'no AVX-512'}"
            f"{'; AMX' if 'amx_bf16' in flags else '; no AMX'}), {onednn_state()}, {options.threads} TF intra-op threads, "
            f"{options.inter_op_threads} inter-op, "
            f"device {options.device}{' (GPUs: ' + ', '.join(gpus) + ')' if gpus else ''}, "
            f"TensorFlow {tf.__version__}, Keras {keras.__version__}")


def has_amx() -> bool:
    with contextlib.suppress(OSError):
        with open("/proc/cpuinfo") as f:
            return "amx_bf16" in f.read()
    return False


class MatmulProbe:
    """One call = `calls` square matmuls in `dtype`; timed among a section's variants, so that the
    peak a section divides by was measured under the same load as its steps."""

    def __init__(self, dtype: str, options: Options):
        self.n = 512 if options.quick else (2048 if "CPU" in options.device.upper() else 8192)
        self.calls = 3
        with tf.device(options.device):
            compute = tf.as_dtype(dtype)
            self.a = tf.cast(tf.random.normal([self.n, self.n]), compute)
            self.b = tf.cast(tf.random.normal([self.n, self.n]), compute)
        calls = self.calls

        @tf.function
        def matmuls(a, b):
            total = tf.zeros([], a.dtype)
            for _ in range(calls):
                total += tf.matmul(a, b)[0, 0]
                a = a + total  # a dependency, so the matmuls are not merged or reordered
            return total

        self.matmuls = matmuls
        self.device = options.device

    def __call__(self):
        with tf.device(self.device):
            self.matmuls(self.a, self.b).numpy()

    def flops_per_second(self, seconds: list) -> float:
        return self.calls * 2 * self.n ** 3 / median(seconds)


def matmul_peak(dtype: str, options: Options, report: Report) -> float:
    """The median FLOP/s of square matmuls in `dtype` on the device, measured now."""
    probe = MatmulProbe(dtype, options)
    peak = probe.flops_per_second(interleaved({"mm": probe}, max(3, options.repeats), warmup=1)["mm"])
    report.line(f"matmul peak ({dtype}, {probe.n} x {probe.n} squares): {peak / 1e9:,.1f} GFLOP/s")
    return peak
