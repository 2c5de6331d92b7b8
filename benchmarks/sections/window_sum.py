"""The span convolution's window sum alone, forward + backward, in every formulation tried.

Legend: B batch, T length, N heads, H head size, K kernel size, S key length.
"""

import numpy as np
import tensorflow as tf

from benchmarks.options import Options, Shapes
from benchmarks.timing import Report, interleaved, median, spread
from convbert_tf import ops

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
