"""The attention layer (mixed attention in every span-conv implementation against BERT
self-attention, forward + backward) and its activation memory.

Legend: B batch, T length, D hidden.
"""

import keras
import tensorflow as tf

from benchmarks.machine import mib, step_peak_bytes
from benchmarks.options import POLICIES, Options, Shapes
from benchmarks.timing import Report, interleaved, median, spread
from benchmarks.workloads import bert_of
from convbert_tf import flops
from convbert_tf.config import ConvBertConfig
from convbert_tf.layers.mixed_attention import MixedAttention
from convbert_tf.layers.span_dynamic_conv import IMPLEMENTATIONS

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
