"""The benchmark's measurements: ConvBERT against a same-size BERT built from the same code.

Legend: B batch, T length, D hidden, V vocab size, P masked positions per sequence.

Every comparison interleaves its variants (A, B, A, B, ...) in one process and reports
medians of the repeats, so that a neighbour's load on shared cores hits every variant alike.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import io
import os
import platform
import statistics
import tempfile
import time

import keras
import numpy as np
import tensorflow as tf

from benchmarks import flops
from convbert_tf import ConvBertEncoder
from convbert_tf.config import ConvBertConfig
from convbert_tf import ops
from convbert_tf.layers import encoder_block, mixed_attention
from convbert_tf.layers.encoder_block import ConvBertBlock
from convbert_tf.layers.layer_norm import LayerNorm
from convbert_tf.layers.mixed_attention import MixedAttention
from convbert_tf.layers.span_conv import IMPLEMENTATIONS
from convbert_tf.training.optimizer import AdamWeightDecay
from convbert_tf.pretraining import run as trainer
from convbert_tf.pretraining.hparams import resolve_hparams

# Shapes of the issue: train steps at 16 x 128, inference at 1 x 128 and 32 x 128, the
# attention layer at hidden 768, batch 16, lengths 128 and 512.
TRAIN_BATCH, SEQ_LENGTH = 16, 128
LATENCY_BATCH, THROUGHPUT_BATCH = 1, 32
LAYER_HIDDEN, LAYER_HEADS, LAYER_BATCH, LAYER_LENGTHS = 768, 12, 16, (128, 512)
STEPS_PER_CALL = 2  # train steps per timed call of the (compiled) train loop

POLICIES = {"float32": "float32", "bfloat16": "mixed_bfloat16", "float16": "mixed_float16"}
# What run_all can measure: the attention layer and window sum, the encoder block with and
# without its fused ops, per-size train steps and inference, SavedModel latency, the input
# pipeline, mixed precision.
SECTIONS = ("layer", "fusions", "sizes", "serving", "pipeline", "precision")


@dataclasses.dataclass(frozen=True)
class Options:
    """What to run; see benchmarks/run.py for the flags."""
    sizes: tuple = ("small", "medium-small")
    repeats: int = 5
    dtype: str = "float32"
    jit_compile: bool = False
    device: str = "/CPU:0"
    threads: int = 2
    inter_op_threads: int = 2
    conv_implementation: str = "shifted_xla"
    quick: bool = False
    precision_steps: int = 40
    sections: tuple = SECTIONS


@dataclasses.dataclass(frozen=True)
class Shapes:
    train_batch: int = TRAIN_BATCH
    seq_length: int = SEQ_LENGTH
    latency_batch: int = LATENCY_BATCH
    throughput_batch: int = THROUGHPUT_BATCH
    layer_hidden: int = LAYER_HIDDEN
    layer_heads: int = LAYER_HEADS
    layer_batch: int = LAYER_BATCH
    layer_lengths: tuple = LAYER_LENGTHS


# A tiny model and tiny shapes for --quick (a smoke run, not a measurement).
QUICK_SHAPES = Shapes(train_batch=4, seq_length=32, throughput_batch=4, layer_hidden=64, layer_heads=4,
                      layer_batch=2, layer_lengths=(32, 64))
QUICK_OVERRIDES = {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
                   "intermediate_size": 128, "max_position_embeddings": 64}
QUICK_VOCAB = 1000


# ----- small helpers ---------------------------------------------------------------------------

class Report:
    """Prints lines as they come and keeps the goal verdicts for the summary."""

    def __init__(self, out):
        self.out = out
        self.goals = []

    def line(self, text=""):
        print(text, file=self.out, flush=True)

    @contextlib.contextmanager
    def section(self):
        """Prints how long a section took (building and tracing included)."""
        start = time.perf_counter()
        yield
        self.line(f"(section took {time.perf_counter() - start:.0f} s)")

    def goal(self, name, met, detail):
        self.goals.append((name, met, detail))
        self.line(f"GOAL {'met    ' if met else 'NOT met'} {name}: {detail}")


def median(values):
    return statistics.median(values)


def spread(values):
    """Half the min-max range relative to the median, as a +-% string."""
    m = median(values)
    return f"+-{50 * (max(values) - min(values)) / m:.0f}%" if m else ""


def interleaved(variants: dict, repeats: int, warmup: int = 2) -> dict:
    """{name: [seconds per call]}: each repeat calls every variant once, in turn."""
    for fn in variants.values():
        for _ in range(warmup):
            fn()
    times = {name: [] for name in variants}
    for _ in range(repeats):
        for name, fn in variants.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return times


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


# ----- machine peak ----------------------------------------------------------------------------

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


# ----- data ------------------------------------------------------------------------------------

def write_data(data_dir: str, vocab_size: int, seq_length: int, records: int, seed: int = 0) -> str:
    """vocab.txt (V tokens) and TFRecords of full-length sequences from a sparse bigram chain.

    Each word has 3 possible successors, so an MLM can learn the text (the loss curve of the
    precision check falls) while every record is as long as a packed pretraining example.
    """
    rng = np.random.default_rng(seed)
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    with open(os.path.join(data_dir, "vocab.txt"), "w") as f:
        f.write("\n".join(specials + [f"w{i}" for i in range(vocab_size - len(specials))]) + "\n")
    words = min(vocab_size - 5, 2000)
    successors = rng.integers(5, 5 + words, size=(5 + words, 3))
    path = os.path.join(data_dir, "pretrain_data.tfrecord")
    with tf.io.TFRecordWriter(path) as writer:
        for _ in range(records):
            ids = [int(rng.integers(5, 5 + words))]
            for _ in range(seq_length - 3):
                ids.append(int(successors[ids[-1], rng.integers(0, 3)]))
            ids = [2] + ids + [3]
            features = {"input_ids": ids, "input_mask": [1] * seq_length, "segment_ids": [0] * seq_length}
            example = tf.train.Example(features=tf.train.Features(feature={
                k: tf.train.Feature(int64_list=tf.train.Int64List(value=v)) for k, v in features.items()}))
            writer.write(example.SerializeToString())
    return path


class Workspace:
    """A temporary data dir with a vocab and records, shared by every measurement."""

    def __init__(self, options: Options, shapes: Shapes):
        self.tmp = tempfile.TemporaryDirectory(prefix="convbert-bench-")
        self.dir = self.tmp.name
        vocab = QUICK_VOCAB if options.quick else 30522
        records = 64 if options.quick else 1024
        self.vocab_size = vocab
        self.records = write_data(self.dir, vocab, shapes.seq_length, records)

    def hparams(self, size: str, shapes: Shapes, options: Options, bert: bool, electra: bool, **changes):
        values = dict(model_size=size, vocab_size=self.vocab_size, max_seq_length=shapes.seq_length,
                      train_batch_size=shapes.train_batch, electra_objective=electra,
                      conv_implementation=options.conv_implementation, export_at_end=False,
                      vocab_file=os.path.join(self.dir, "vocab.txt"), pretrain_tfrecords=self.records,
                      model_dir=os.path.join(self.dir, "model"), num_train_steps=1000, num_warmup_steps=10)
        if options.quick:
            values.update(model_hparam_overrides=dict(QUICK_OVERRIDES), embedding_size=32)
        if bert:  # BERT mode of the same code: all heads self-attention, no convolution, plain FFN
            values.update(conv_type="noconv", head_ratio=1, linear_groups=1)
        values.update(changes)
        return resolve_hparams(values)

    def close(self):
        self.tmp.cleanup()


def bert_of(config: ConvBertConfig) -> ConvBertConfig:
    return config.replace(conv_type="noconv", head_ratio=1, linear_groups=1)


@contextlib.contextmanager
def global_policy(dtype: str):
    """Pretraining builds its model under the global policy; set it for one construction."""
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(POLICIES[dtype])
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


class TrainStep:
    """The production train loop (trainer.Pretraining.make_train_loop) on one repeated batch."""

    def __init__(self, hp, options: Options, dtype: str, jit_compile: bool = False, batches: int = 1):
        self.strategy = tf.distribute.OneDeviceStrategy(options.device)
        with global_policy(dtype):
            self.run = trainer.Pretraining(hp, self.strategy, jit_compile=jit_compile, out=io.StringIO())
        dataset = self.run.distributed_dataset(hp.pretrain_tfrecords, hp.train_batch_size, True)
        iterator = iter(dataset)
        taken = [next(iterator) for _ in range(batches)]
        fixed = tf.data.Dataset.from_tensor_slices(
            {k: tf.stack([b[k] for b in taken]) for k in taken[0]}).repeat()  # cycles `batches` batches
        self.iterator = iter(self.strategy.experimental_distribute_dataset(fixed))
        self.loop = self.run.make_train_loop()
        self.tokens_per_step = hp.train_batch_size * hp.max_seq_length

    def __call__(self, steps=STEPS_PER_CALL):
        values = self.loop(self.iterator, tf.constant(steps))
        return {k: float(v) for k, v in values.items()}


# ----- the sections ----------------------------------------------------------------------------

# Ops whose output is a view of their first input (no new buffer).
VIEW_OPS = {"Reshape", "ExpandDims", "Squeeze", "Identity", "StopGradient"}


def layer_saved_bytes(layer, hidden, padding_mask):
    """Bytes of forward tensors that the backward pass reads (tensor-size accounting).

    Traces forward + gradient into one graph and sums the sizes of the distinct buffers that
    gradient ops read from forward ops. Views (reshapes, expand_dims, identities) count as
    the tensor they view; variables, constants and the layer input are not counted.
    """
    boundary = []

    @tf.function
    def fwd_bwd(hidden, padding_mask):
        with tf.GradientTape() as tape:
            tape.watch(hidden)
            output = layer(hidden, padding_mask, training=True)
            loss = tf.reduce_sum(tf.cast(output, tf.float32))
        boundary.append(len(tf.compat.v1.get_default_graph().get_operations()))
        return tape.gradient(loss, [hidden] + layer.trainable_weights)

    graph = fwd_bwd.get_concrete_function(hidden, padding_mask).graph
    operations = graph.get_operations()
    forward = set(operations[:boundary[0]])

    def buffer_of(tensor):
        while tensor.op.type in VIEW_OPS or tensor.op.type == "IdentityN":
            tensor = tensor.op.inputs[tensor.value_index if tensor.op.type == "IdentityN" else 0]
        return tensor

    skip = {"ReadVariableOp", "Const", "Placeholder", "VarHandleOp", "Shape"}
    saved = set()
    for op in operations[boundary[0]:]:
        for tensor in op.inputs:
            if tensor.op in forward:
                root = buffer_of(tensor)
                if root.op.type not in skip:
                    saved.add(root.ref())
    total = 0
    for tensor in (ref.deref() for ref in saved):
        if tensor.dtype in (tf.resource, tf.variant) or not tensor.shape.is_fully_defined():
            continue
        total += tensor.shape.num_elements() * tensor.dtype.size
    return total


def attention_layer_section(options: Options, shapes: Shapes, report: Report, dtype: str):
    """Mixed attention (every implementation) against BERT self-attention, forward + backward."""
    hidden_size, heads = shapes.layer_hidden, shapes.layer_heads
    report.line(f"\n== attention layer: hidden {hidden_size}, {heads} heads, batch {shapes.layer_batch}, "
                f"fwd+bwd, {dtype} ==")
    policy = POLICIES[dtype]
    keras.utils.set_random_seed(0)
    layers = {"self-attention (BERT)": MixedAttention(hidden_size, heads, head_ratio=1, conv_type="noconv",
                                                      attention_dropout=0.1, dtype=policy)}
    for name in IMPLEMENTATIONS:
        layers[f"mixed [{name}]"] = MixedAttention(hidden_size, heads, head_ratio=2, conv_kernel_size=9,
                                                   attention_dropout=0.1, conv_implementation=name, dtype=policy)
    config = ConvBertConfig(hidden_size=hidden_size, num_attention_heads=heads, intermediate_size=4 * hidden_size)
    fast = f"mixed [{options.conv_implementation}]"
    for layer in layers.values():
        layer.build((None, None, hidden_size))
    results = {}
    for length in shapes.layer_lengths:
        with tf.device(options.device):
            hidden = tf.random.normal([shapes.layer_batch, length, hidden_size])
            padding_mask = tf.ones([shapes.layer_batch, length], tf.int32)
            steps = {}
            for name, layer in layers.items():
                @tf.function
                def step(hidden, padding_mask, layer=layer):
                    with tf.GradientTape() as tape:
                        tape.watch(hidden)
                        output = layer(hidden, padding_mask, training=True)
                        loss = tf.reduce_sum(tf.cast(output, tf.float32) ** 2)
                    return tape.gradient(loss, [hidden] + layer.trainable_weights)

                steps[name] = lambda step=step: step(hidden, padding_mask)[0].numpy()
            times = interleaved(steps, options.repeats)
            peaks = {name: step_peak_bytes(fn, options.device) for name, fn in steps.items()}
        saved = {name: layer_saved_bytes(layer, hidden, padding_mask) for name, layer in layers.items()}
        reference = "self-attention (BERT)"
        report.line(f"T={length}: {'layer':<24}{'ms (median)':>14}{'vs BERT':>9}{'saved for bwd MiB':>19}"
                    f"{'peak MiB':>10}")
        for name in layers:
            ms = 1e3 * median(times[name])
            report.line(f"{'':6}{name:<24}{ms:>9.1f} {spread(times[name]):>4}"
                        f"{median(times[name]) / median(times[reference]):>9.2f}{mib(saved[name]):>19}"
                        f"{mib(peaks[name]):>10}")
        mixed_flops = flops.attention_layer_flops(config, length)
        bert_flops = flops.attention_layer_flops(bert_of(config), length)
        time_ratio = median(times[fast]) / median(times[reference])
        memory_ratio = saved[fast] / saved[reference]
        report.line(f"RATIO layer T={length} time mixed[{options.conv_implementation}]/self-attention = "
                    f"{time_ratio:.2f} (FLOP ratio {mixed_flops / bert_flops:.2f}); unfold/self-attention = "
                    f"{median(times['mixed [unfold]']) / median(times[reference]):.2f}")
        report.line(f"RATIO layer T={length} activation memory mixed[{options.conv_implementation}]/"
                    f"self-attention = {memory_ratio:.2f}; unfold/self-attention = "
                    f"{saved['mixed [unfold]'] / saved[reference]:.2f}")
        results[length] = (time_ratio, memory_ratio)
    return results


def banded_window_sum(values, span_kernel):
    """A candidate formulation kept out of the library: the window sum as a banded matmul.

    values [B, T, N, H], span_kernel [B, T, N, K] -> [B, T, N, H]. The kernel is skewed into
    a [B, N, T, T] band (row t holds kernel[t] at columns t - h ... t + h) and multiplied
    with the values: exact, but O(T^2) in time and memory where the window sum is O(T K).
    """
    kernel_size = span_kernel.shape[-1]
    half = (kernel_size - 1) // 2
    batch, length, heads = tf.shape(values)[0], tf.shape(values)[1], tf.shape(values)[2]
    kernel = tf.transpose(span_kernel, [0, 2, 1, 3])  # [B, N, T, K]
    kernel = tf.pad(kernel, [[0, 0], [0, 0], [0, 0], [0, length]])  # [B, N, T, T + K]
    flat = tf.reshape(kernel, [batch, heads, -1])[:, :, :length * (length + kernel_size - 1)]  # row t shifted by t
    band = tf.reshape(flat, [batch, heads, length, length + kernel_size - 1])[:, :, :, half:half + length]  # [B, N, T, T]
    return tf.einsum("BNTS,BSNH->BTNH", band, values)  # [B, T, N, H]


def window_sum_section(options: Options, shapes: Shapes, report: Report, dtype: str):
    """The span convolution's window sum alone, fwd+bwd, in every formulation tried."""
    heads, head_size, kernel_size = shapes.layer_heads // 2, shapes.layer_hidden // shapes.layer_heads, 9
    report.line(f"\n== span convolution window sum alone: {heads} heads x {head_size}, K {kernel_size}, batch "
                f"{shapes.layer_batch}, fwd+bwd, {dtype} ==")
    compute = tf.as_dtype(dtype)
    formulations = {
        "unfold + einsum": lambda v, k: tf.einsum(
            "BTNHK,BTNK->BTNH",
            tf.reshape(ops.unfold_windows(tf.reshape(v, [tf.shape(v)[0], tf.shape(v)[1], -1]), kernel_size),
                       tf.concat([tf.shape(v), [kernel_size]], 0)), k),
        "shifted": lambda v, k: ops.shifted_window_sum(v, k),
        "shifted_xla": lambda v, k: ops.shifted_window_sum(v, k, jit_compile=True),
        "banded matmul": banded_window_sum,
    }
    for length in shapes.layer_lengths:
        with tf.device(options.device):
            values = tf.cast(tf.random.normal([shapes.layer_batch, length, heads, head_size]), compute)
            span_kernel = tf.cast(tf.nn.softmax(tf.random.normal([shapes.layer_batch, length, heads, kernel_size])),
                                  compute)
            steps, outputs = {}, {}
            for name, fn in formulations.items():
                @tf.function
                def step(values, span_kernel, fn=fn):
                    with tf.GradientTape() as tape:
                        tape.watch([values, span_kernel])
                        output = fn(values, span_kernel)
                        loss = tf.reduce_sum(tf.cast(output, tf.float32) ** 2)
                    return [output] + tape.gradient(loss, [values, span_kernel])

                outputs[name] = [tf.cast(t, tf.float32).numpy() for t in step(values, span_kernel)]
                steps[name] = lambda step=step: step(values, span_kernel)[1].numpy()
            times = interleaved(steps, options.repeats)
        reference = "unfold + einsum"
        report.line(f"T={length}: {'formulation':<20}{'ms (median)':>14}{'vs unfold':>11}{'max rel diff':>14}")
        for name in formulations:
            difference = max(float(np.abs(a - b).max() / np.abs(b).max())  # output and both gradients
                             for a, b in zip(outputs[name], outputs[reference]))
            report.line(f"{'':6}{name:<20}{1e3 * median(times[name]):>9.1f} {spread(times[name]):>4}"
                        f"{median(times[name]) / median(times[reference]):>11.2f}{difference:>14.1e}")


def block_config(size: str, options: Options) -> ConvBertConfig:
    """The config of `size`; with --quick a tiny one with grouped linear layers."""
    return (ConvBertConfig.from_preset(size) if not options.quick
            else ConvBertConfig(**QUICK_OVERRIDES, linear_groups=2))


@contextlib.contextmanager
def unfused(elementwise: bool, grouped_ffn: bool):
    """While a function traces: TensorFlow's GELU (after a separate bias add), Keras's LayerNorm
    and Keras's Dropout (with TensorFlow's softmax and residual add) instead of the XLA-fused
    ops, and/or the grouped FFN as two GroupedDense calls instead of one batched path. The
    references the fused paths replaced (same numbers; dropout draws a different stream), for
    the `fusions` section only."""
    saved = (ops._gelu_xla, ops._bias_gelu_xla, LayerNorm.call, encoder_block.grouped_feed_forward,
             encoder_block.dropout_residual_layer_norm, mixed_attention.attention_probs_with_dropout)
    if elementwise:
        ops._gelu_xla = lambda x: tf.nn.gelu(x, approximate=False)
        ops._bias_gelu_xla = lambda x, bias: tf.nn.gelu(x + bias, approximate=False)
        LayerNorm.call = keras.layers.LayerNormalization.call
        encoder_block.dropout_residual_layer_norm = _composed_dropout_residual_layer_norm
        mixed_attention.attention_probs_with_dropout = _composed_attention_probs
    if grouped_ffn:
        encoder_block.grouped_feed_forward = lambda inputs, first, second: second(first(inputs))
    try:
        yield
    finally:
        (ops._gelu_xla, ops._bias_gelu_xla, LayerNorm.call, encoder_block.grouped_feed_forward,
         encoder_block.dropout_residual_layer_norm, mixed_attention.attention_probs_with_dropout) = saved


def _composed_dropout_residual_layer_norm(dropout, norm, x, residual, training):
    return norm(residual + dropout(x, training=training))


def _composed_attention_probs(dropout, scores, padding_mask, scale, training):
    probs = mixed_attention.attention_probs(scores, padding_mask, scale, dropout.compute_dtype)
    return dropout(probs, training=training)


def fusions_section(size: str, options: Options, shapes: Shapes, report: Report, dtype: str):
    """One encoder block of `size`, fwd+bwd in training (dropout on), with and without the fused ops."""
    config = block_config(size, options)
    report.line(f"\n== fused ops: one {size if not options.quick else 'tiny'} encoder block "
                f"(hidden {config.hidden_size}, G {config.linear_groups}), batch {shapes.train_batch} x "
                f"{shapes.seq_length}, fwd+bwd, {dtype} ==")
    policy = POLICIES[dtype]
    keras.utils.set_random_seed(0)
    blocks = {}
    for model, cfg in (("ConvBERT", config), ("BERT", bert_of(config))):
        blocks[model] = ConvBertBlock(
            cfg.hidden_size, cfg.num_attention_heads, cfg.intermediate_size, head_ratio=cfg.head_ratio,
            conv_kernel_size=cfg.conv_kernel_size, conv_type=cfg.conv_type, linear_groups=cfg.linear_groups,
            hidden_act=cfg.hidden_act, hidden_dropout=0.1, attention_dropout=0.1,
            conv_implementation=options.conv_implementation, dtype=policy)
        blocks[model].build((None, None, cfg.hidden_size))
    variants = {"ConvBERT": ("ConvBERT", False, False),
                "ConvBERT, GELU, LayerNorm, dropout unfused": ("ConvBERT", True, False),
                "BERT": ("BERT", False, False),
                "BERT, GELU, LayerNorm, dropout unfused": ("BERT", True, False)}
    if config.linear_groups > 1:
        variants["ConvBERT, grouped FFN as 2 layers"] = ("ConvBERT", False, True)
        variants["ConvBERT, nothing fused"] = ("ConvBERT", True, True)
    with tf.device(options.device):
        hidden = tf.random.normal([shapes.train_batch, shapes.seq_length, config.hidden_size])
        padding_mask = tf.ones([shapes.train_batch, shapes.seq_length], tf.int32)
        # a random direction: the sum of squares of a LayerNorm's output is constant, its gradient 0
        probe = tf.random.normal(hidden.shape)
        steps, outputs = {}, {}
        for name, (model, elementwise, grouped_ffn) in variants.items():
            block = blocks[model]

            @tf.function
            def step(hidden, padding_mask, block=block, evaluate=False):
                with tf.GradientTape() as tape:
                    tape.watch(hidden)
                    output = block(hidden, padding_mask, training=not evaluate)
                    loss = tf.reduce_sum(tf.cast(output, tf.float32) * probe)
                return [output] + tape.gradient(loss, [hidden] + block.trainable_weights)

            with unfused(elementwise, grouped_ffn):  # traced here, once per `evaluate`
                outputs[name] = [tf.cast(t, tf.float32).numpy() for t in step(hidden, padding_mask, evaluate=True)]
                step(hidden, padding_mask)
            steps[name] = lambda step=step: step(hidden, padding_mask)[1].numpy()
        times = interleaved(steps, options.repeats)
    report.line(f"{'variant':<44}{'ms (median)':>14}{'vs fused':>10}{'max rel diff':>14}")
    for name, (model, _, _) in variants.items():
        # output and every gradient, each relative to its own scale; a gradient that is 0 in exact
        # arithmetic (the key bias's: softmax ignores a constant shift) is measured on the largest's
        floor = 1e-3 * max(float(np.abs(b).max()) for b in outputs[model])
        difference = max(float(np.abs(a - b).max() / max(float(np.abs(b).max()), floor))
                         for a, b in zip(outputs[name], outputs[model]))
        report.line(f"{name:<44}{1e3 * median(times[name]):>9.1f} {spread(times[name]):>4}"
                    f"{median(times[name]) / median(times[model]):>10.2f}{difference:>14.1e}")
    fused_ratio = median(times["ConvBERT"]) / median(times["BERT"])
    plain = "ConvBERT, nothing fused" if config.linear_groups > 1 else "ConvBERT, GELU, LayerNorm, dropout unfused"
    report.line(f"RATIO {size} block time ConvBERT/BERT = {fused_ratio:.2f} fused; "
                f"{median(times[plain]) / median(times['BERT, GELU, LayerNorm, dropout unfused']):.2f} unfused")


def size_section(size: str, workspace: Workspace, options: Options, shapes: Shapes, report: Report,
                 dtype: str):
    """Train steps (MLM and ELECTRA), inference and memory of ConvBERT and BERT of one size."""
    hp = {(model, objective): workspace.hparams(size, shapes, options, bert=model == "BERT",
                                                 electra=objective == "electra")
          for model in ("ConvBERT", "BERT") for objective in ("mlm", "electra")}
    config = hp["ConvBERT", "mlm"].model_config()
    report.line(f"\n== {size if not options.quick else 'tiny (--quick)'}: hidden {config.hidden_size}, "
                f"{config.num_hidden_layers} layers, E {config.resolved_embedding_size}, "
                f"G {config.linear_groups}, {dtype}, span conv '{options.conv_implementation}', "
                f"batch {shapes.train_batch} x {shapes.seq_length} ==")
    predictions = hp["ConvBERT", "mlm"].predictions_per_seq
    train_flops = {}
    for (model, objective), h in hp.items():
        cfg = h.model_config()
        train_flops[model, objective] = (flops.mlm_step_flops(cfg, shapes.seq_length, predictions)
                                         if objective == "mlm" else
                                         flops.electra_step_flops(cfg, h.generator_config(), shapes.seq_length,
                                                                  predictions))
    # Train steps, interleaved: ConvBERT, BERT and the ConvBERT reference (unfold) for the MLM step.
    steps = {}
    for (model, objective), h in hp.items():
        steps[f"{model} {objective}"] = TrainStep(h, options, dtype)
        if options.jit_compile:
            steps[f"{model} {objective} XLA"] = TrainStep(h, options, dtype, jit_compile=True)
    if options.conv_implementation != "unfold":
        reference_hp = workspace.hparams(size, shapes, options, bert=False, electra=False,
                                         conv_implementation="unfold")
        steps["ConvBERT mlm [unfold]"] = TrainStep(reference_hp, options, dtype)
    probe = MatmulProbe(dtype, options)
    times = interleaved(dict(steps, **{"matmul peak": probe}), options.repeats)
    peak = probe.flops_per_second(times.pop("matmul peak"))
    peaks = {name: step_peak_bytes(lambda step=step: step(1), options.device) for name, step in steps.items()}
    report.line(f"{dtype} matmul peak measured among these steps: {peak / 1e9:,.1f} GFLOP/s")

    def tokens_per_second(name):
        return STEPS_PER_CALL * steps[name].tokens_per_step / median(times[name])

    report.line(f"{'train step':<28}{'tokens/s':>10}{'ms/step':>10}{'GFLOP/token':>13}{'TFLOP/s':>9}"
                f"{'% peak':>8}{'step peak MiB':>15}")
    for name in steps:
        model, objective = name.split()[:2]
        rate = tokens_per_second(name)
        achieved = rate * train_flops[model, objective]
        report.line(f"{name:<28}{rate:>10,.0f}{1e3 * median(times[name]) / STEPS_PER_CALL:>8.0f}"
                    f" {spread(times[name]):>4}{train_flops[model, objective] / 1e9:>9.3f}"
                    f"{achieved / 1e12:>9.3f}{100 * achieved / peak:>8.1f}{mib(peaks[name]):>15}")
    ratios = {}
    for objective in ("mlm", "electra"):
        time_ratio = median(times[f"ConvBERT {objective}"]) / median(times[f"BERT {objective}"])
        flop_ratio = train_flops["ConvBERT", objective] / train_flops["BERT", objective]
        ratios[objective] = (time_ratio, flop_ratio)
        report.line(f"RATIO {size} {objective} step time ConvBERT/BERT = {time_ratio:.2f} "
                    f"(FLOP ratio {flop_ratio:.2f})")
        if options.jit_compile:
            for model in ("ConvBERT", "BERT"):
                report.line(f"RATIO {size} {objective} {model} step time XLA/no-XLA = "
                            f"{median(times[f'{model} {objective} XLA']) / median(times[f'{model} {objective}']):.2f}")
    if "ConvBERT mlm [unfold]" in steps:
        report.line(f"RATIO {size} mlm step time ConvBERT[{options.conv_implementation}]/ConvBERT[unfold] = "
                    f"{median(times['ConvBERT mlm']) / median(times['ConvBERT mlm [unfold]']):.2f}")
    fraction = {name: tokens_per_second(name) * train_flops[tuple(name.split()[:2])] / peak for name in steps}
    max_tokens_per_second = max(tokens_per_second(name) for name in steps)
    steps.clear()  # frees the train models before the inference models are built

    # Inference: batch-1 latency and batch-32 throughput of the encoder alone.
    infer = {}
    policy = POLICIES[dtype]
    encoders = {}
    for model in ("ConvBERT", "BERT"):
        with tf.device(options.device):
            keras.utils.set_random_seed(0)
            encoders[model] = ConvBertEncoder(hp[model, "mlm"].model_config(), dtype=policy)
    rng = np.random.default_rng(0)

    def batch_of(size_):
        ids = rng.integers(5, workspace.vocab_size, size=(size_, shapes.seq_length)).astype(np.int32)
        return {"input_ids": tf.constant(ids), "input_mask": tf.ones_like(ids), "segment_ids": tf.zeros_like(ids)}

    inputs = {"latency": batch_of(shapes.latency_batch), "throughput": batch_of(shapes.throughput_batch)}
    forward = {}
    for model, encoder in encoders.items():
        forward[model] = tf.function(lambda batch, encoder=encoder: encoder(batch, training=False)["sequence_output"])
        for kind, batch in inputs.items():
            inner = 5 if kind == "latency" else 1
            infer[f"{model} {kind}"] = (lambda f=forward[model], b=batch, n=inner:
                                        [f(b) for _ in range(n)][-1].numpy())
    with tf.device(options.device):
        infer_times = interleaved(infer, options.repeats)
        infer_peak = {name: step_peak_bytes(fn, options.device) for name, fn in infer.items()}
    report.line(f"{'inference':<28}{'value':>22}{'peak MiB':>10}")
    for model in ("ConvBERT", "BERT"):
        latency = median(infer_times[f"{model} latency"]) / 5
        rate = shapes.throughput_batch * shapes.seq_length / median(infer_times[f"{model} throughput"])
        report.line(f"{model + f' latency {shapes.latency_batch}x{shapes.seq_length}':<28}"
                    f"{1e3 * latency:>16.1f} ms   {mib(infer_peak[f'{model} latency']):>8}")
        report.line(f"{model + f' throughput {shapes.throughput_batch}x{shapes.seq_length}':<28}"
                    f"{rate:>14,.0f} tok/s{mib(infer_peak[f'{model} throughput']):>10}")
    for kind in ("latency", "throughput"):
        report.line(f"RATIO {size} inference {kind} time ConvBERT/BERT = "
                    f"{median(infer_times[f'ConvBERT {kind}']) / median(infer_times[f'BERT {kind}']):.2f} "
                    f"(FLOP ratio {flops.inference_flops(config, shapes.seq_length) / flops.inference_flops(bert_of(config), shapes.seq_length):.2f})")
    return {"ratios": ratios, "fraction": fraction, "max_tokens_per_second": max_tokens_per_second, "encoder": encoders["ConvBERT"], "forward": forward["ConvBERT"],
            "latency_batch": inputs["latency"], "config": config}


def savedmodel_section(size_result, workspace: Workspace, options: Options, report: Report):
    """Batch-1 latency of the exported SavedModel against the in-process model."""
    from convbert_tf.export import export_encoder  # needs tensorflow_text at load time
    export_dir = os.path.join(workspace.dir, "saved_model")
    export_encoder(size_result["encoder"], export_dir, vocab_file=os.path.join(workspace.dir, "vocab.txt"),
                   max_seq_length=size_result["latency_batch"]["input_ids"].shape[1], overwrite=True)
    loaded = tf.saved_model.load(export_dir)
    serve = loaded.signatures["serving_default"]
    batch = size_result["latency_batch"]
    forward = size_result["forward"]
    served = serve(**batch)["sequence_output"].numpy()
    in_process = tf.cast(forward(batch), tf.float32).numpy()
    difference = float(np.abs(served - in_process).max())
    variants = {"in-process": lambda: [forward(batch) for _ in range(5)][-1].numpy(),
                "SavedModel": lambda: [serve(**batch) for _ in range(5)][-1]["sequence_output"].numpy()}
    with tf.device(options.device):
        times = interleaved(variants, options.repeats)
    ratio = median(times["SavedModel"]) / median(times["in-process"])
    report.line(f"\n== SavedModel (serving_default) vs in-process, batch {batch['input_ids'].shape[0]} x "
                f"{batch['input_ids'].shape[1]} ==")
    report.line(f"in-process {1e3 * median(times['in-process']) / 5:.1f} ms, SavedModel "
                f"{1e3 * median(times['SavedModel']) / 5:.1f} ms, max |difference| {difference:.1e}")
    report.line(f"RATIO SavedModel/in-process batch-1 latency = {ratio:.2f}")
    return ratio


def input_pipeline_section(workspace: Workspace, options: Options, shapes: Shapes, report: Report,
                           consumed_tokens_per_second: float):
    """Reading + parsing + dynamic masking (the trainer's pipeline) alone, in tokens/s."""
    hp = workspace.hparams("small", shapes, options, bert=False, electra=True)
    strategy = tf.distribute.OneDeviceStrategy(options.device)
    run = trainer.Pretraining(hp, strategy, out=io.StringIO())
    iterator = iter(run.distributed_dataset(hp.pretrain_tfrecords, hp.train_batch_size, True))
    batches = 10 if options.quick else 100
    for _ in range(5):
        next(iterator)

    def read():
        for _ in range(batches):
            features = next(iterator)
        features["masked_lm_ids"].numpy()

    times = interleaved({"pipeline": read}, max(3, options.repeats), warmup=0)["pipeline"]
    rate = batches * hp.train_batch_size * hp.max_seq_length / median(times)
    ratio = rate / consumed_tokens_per_second
    report.line(f"\n== input pipeline (TFRecord read, parse, dynamic masking), batch {hp.train_batch_size} ==")
    report.line(f"{rate:,.0f} tokens/s alone; the fastest train step measured consumes "
                f"{consumed_tokens_per_second:,.0f} tokens/s")
    report.line(f"RATIO input pipeline rate / train step consumption = {ratio:.1f}")
    return ratio


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


def optimizer_section(size: str, options: Options, report: Report):
    """One AdamWeightDecay update (clipping, decay) of a size's encoder variables, fused and op by op."""
    config = block_config(size, options)
    rng = np.random.default_rng(0)
    with tf.device(options.device):
        keras.utils.set_random_seed(0)
        encoder = ConvBertEncoder(config)
        ids = tf.ones([1, 8], tf.int32)
        encoder({"input_ids": ids, "input_mask": ids, "segment_ids": 0 * ids})
        initial = [v.numpy() for v in encoder.trainable_variables]
        grads = [tf.constant(rng.standard_normal(x.shape).astype(np.float32) * 1e-2) for x in initial]
        variables, updates = {}, {}
        for name, fused in (("fused", True), ("op by op", False)):
            variables[name] = [keras.Variable(x, name=f"copy_{i}") for i, x in enumerate(initial)]
            optimizer = AdamWeightDecay(1e-4, fused_update=fused)
            optimizer.build(variables[name])
            # the encoder's decay decisions (the copies' paths name no LayerNorm or bias)
            optimizer._uses_weight_decay = tuple(optimizer.uses_weight_decay(v.path)
                                                 for v in encoder.trainable_variables)
            apply = tf.function(functools.partial(optimizer.apply, grads, variables[name]))
            updates[name] = lambda apply=apply: [apply() for _ in range(5)]
        times = interleaved(updates, options.repeats)
    difference = max(float(np.abs(a.numpy() - b.numpy()).max() / np.abs(b.numpy()).max())
                     for a, b in zip(variables["fused"], variables["op by op"]))
    count = sum(x.size for x in initial)
    size = size if not options.quick else "tiny"
    report.line(f"optimizer update of the {size} encoder's {len(initial)} variables ({count / 1e6:.1f} M "
                f"parameters), after equal steps max rel diff {difference:.1e}:")
    for name in updates:
        report.line(f"  {name:<10}{1e3 * median(times[name]) / 5:>9.1f} ms {spread(times[name]):>4}")
    report.line(f"RATIO {size} optimizer update time fused/op by op = "
                f"{median(times['fused']) / median(times['op by op']):.2f}")


def run_all(options: Options, out) -> list:
    """Runs the chosen sections, prints the figures and the goal verdicts; returns the verdicts."""
    report = Report(out)
    shapes = QUICK_SHAPES if options.quick else Shapes()
    chosen = set(options.sections)
    report.line(f"machine: {machine_description(options)}")
    report.line(f"figures are medians of {options.repeats} interleaved repeats (+-: half the range, in % "
                "of the median); tokens/s count every position of the batch")
    workspace = Workspace(options, shapes)
    dtype = options.dtype
    half = "float16" if "GPU" in options.device.upper() and dtype == "float16" else "bfloat16"
    layer, sizes, saved_model_ratio, pipeline_ratio, precision = {}, {}, None, None, None
    try:
        matmul_peak(dtype, options, report)
        if "layer" in chosen:
            with report.section():
                layer = attention_layer_section(options, shapes, report, dtype)
            with report.section():
                window_sum_section(options, shapes, report, dtype)
        if "fusions" in chosen:
            for size in ("small",) if options.quick else options.sizes:
                with report.section():
                    fusions_section(size, options, shapes, report, dtype)
                    optimizer_section(size, options, report)
        if chosen & {"sizes", "serving", "pipeline"}:  # serving and pipeline use a size's figures
            for size in ("small",) if options.quick else options.sizes:
                with report.section():
                    sizes[size] = size_section(size, workspace, options, shapes, report, dtype)
        if "serving" in chosen:
            with report.section():
                saved_model_ratio = savedmodel_section(next(iter(sizes.values())), workspace, options, report)
        if "pipeline" in chosen:
            consumed = max(result["max_tokens_per_second"] for result in sizes.values())
            with report.section():
                pipeline_ratio = input_pipeline_section(workspace, options, shapes, report, consumed)
        if "precision" in chosen:
            with report.section():
                precision = precision_section(workspace, options, shapes, report, half)
    finally:
        workspace.close()

    report.line("\n== goals ==")
    for length, (time_ratio, memory_ratio) in layer.items():
        report.goal(f"mixed attention fwd+bwd time <= self-attention at T={length}", time_ratio <= 1.0,
                    f"ratio {time_ratio:.2f}")
        report.goal(f"mixed attention activation memory <= self-attention at T={length}, k=9", memory_ratio <= 1.0,
                    f"ratio {memory_ratio:.2f}")
    for size, result in sizes.items():
        for objective, (time_ratio, flop_ratio) in result["ratios"].items():
            report.goal(f"{size} {objective} step time ConvBERT/BERT <= FLOP ratio", time_ratio <= flop_ratio,
                        f"{time_ratio:.2f} vs {flop_ratio:.2f}")
    if "base" in sizes and dtype == "float32":
        fraction = sizes["base"]["fraction"]["ConvBERT mlm"]
        report.goal("float32 base train step >= 65% of the float32 matmul peak", fraction >= 0.65,
                    f"{100 * fraction:.0f}% (encoder + MLM head step)")
    if precision is not None:
        speedup, half_gap, seed_gap, peak_ratio = precision
        no_amx = (" (this CPU has no AMX)" if half == "bfloat16" and "CPU" in options.device.upper()
                  and not has_amx() else "")
        report.goal(f"{half} mixed precision >= 2x float32 tokens/s{no_amx}", speedup >= 2.0,
                    f"{speedup:.2f}x; the {half}/float32 matmul peak ratio here is {peak_ratio:.2f}")
        report.goal(f"{half} loss curve matches float32 within noise", half_gap <= max(seed_gap, 0.01),
                    f"mean |{half} - float32| {half_gap:.3f} vs float32 seed-to-seed {seed_gap:.3f}")
    if saved_model_ratio is not None:
        report.goal("SavedModel batch-1 latency within 1.2x of in-process", saved_model_ratio <= 1.2,
                    f"ratio {saved_model_ratio:.2f}")
    if pipeline_ratio is not None:
        report.goal("input pipeline >= 10x the train step's consumption", pipeline_ratio >= 10,
                    f"{pipeline_ratio:.1f}x")
    return report.goals
