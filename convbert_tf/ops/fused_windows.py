"""The span convolution's window sum and the span key's depthwise convolution as K shifted
slices (the forwards in ops/shifted.py), each with a hand-written gradient of the same form,
fused by XLA (outside `without_xla()`). TensorFlow only.

Legend: B batch, T length, N heads, H head size, K kernel size, h = (K-1)/2, W channels.
"""

import tensorflow as tf

from convbert_tf.ops.shifted import depthwise as _depthwise_forward
from convbert_tf.ops.shifted import pad_length as _pad_length
from convbert_tf.ops.shifted import static_odd_kernel_size
from convbert_tf.ops.shifted import window_sum as _window_sum_forward
from convbert_tf.ops.tensors import upcast_half
from convbert_tf.ops.switches import xla_fusion_allowed
from convbert_tf.ops.xla import fused_op


# ----- the span convolution without the unfold -------------------------------------------------
#
#   output[t, n]        = sum_i span_kernel[t, n, i] * values[t + i - h, n]        (values 0 outside)
#   d_kernel[t, n, i]   = sum_H d_output[t, n] * values[t + i - h, n]
#   d_values[s, n]      = sum_i span_kernel[s + h - i, n, i] * d_output[s + h - i, n]
#
# Each line is K shifted slices multiplied and added: no [B, T, C, K] window tensor is ever built,
# and the backward keeps only `values` and `span_kernel` (the unfold keeps all K windows).
# Half-precision inputs are accumulated in float32 and the results rounded once.


def _window_sum_backward(d_output, values, span_kernel):
    """(d_values [B, T, N, H], d_kernel [B, T, N, K]) of `_window_sum_forward`."""
    kernel_size = span_kernel.shape[-1]
    half = (kernel_size - 1) // 2
    length = tf.shape(values)[1]
    d_output32 = upcast_half(d_output)  # [B, T, N, H]
    padded = _pad_length(upcast_half(values), half, half)  # [B, T + K - 1, N, H]
    d_kernel = tf.stack([tf.reduce_sum(d_output32 * padded[:, i:i + length], axis=-1)
                         for i in range(kernel_size)], axis=-1)  # [B, T, N, K]
    padded_grad = _pad_length(d_output32, half, half)  # [B, T + K - 1, N, H]
    padded_kernel = _pad_length(upcast_half(span_kernel), half, half)  # [B, T + K - 1, N, K]
    d_values = None
    for i in range(kernel_size):
        start = kernel_size - 1 - i  # row s + h - i of the unpadded tensors
        term = (padded_grad[:, start:start + length]
                * padded_kernel[:, start:start + length, :, i:i + 1])  # [B, T, N, H]
        d_values = term if d_values is None else d_values + term
    return tf.cast(d_values, values.dtype), tf.cast(d_kernel, span_kernel.dtype)


def shifted_window_sum(values, span_kernel, jit_compile=False):
    """The span convolution's dynamic window sum, as K shifted slices (no window unfold).

    Gives `einsum("BTNHK,BTNK->BTNH", unfold_windows(values), span_kernel)` (heads split)
    without building the [B, T, N, H, K] windows; its gradient is written out the same way.

    Args:
        values: [B, T, N, H] (zero outside 0..T-1).
        span_kernel: [B, T, N, K] one kernel per position and head, K odd.
        jit_compile: compile the forward and the backward with XLA, each into one loop over
            the output (the K products are then never written to memory). Ignored inside
            `without_xla()`.

    Returns:
        [B, T, N, H], in the dtype of `values`; half precision is accumulated in float32.
    """
    static_odd_kernel_size(span_kernel.shape[-1], "shifted_window_sum")
    if jit_compile and xla_fusion_allowed():
        return _shifted_window_sum_xla(values, span_kernel)
    return _shifted_window_sum(values, span_kernel)


_shifted_window_sum, _shifted_window_sum_xla = fused_op(_window_sum_forward, _window_sum_backward)


# ----- the span key's depthwise convolution as shifted slices ----------------------------------
# Legend here: W channels, kernel [K, W] (the [K, W, 1] depthwise kernel), 'same' zero padding.
#
#   output[t, w]    = sum_i kernel[i, w] * x[t + i - h, w]                       (x 0 outside)
#   d_x[s, w]       = sum_i kernel[i, w] * d_output[s + h - i, w]
#   d_kernel[i, w]  = sum_{B, T} d_output[t, w] * x[t + i - h, w]
#
# XLA:CPU compiles a depthwise convolution and its gradients into slow generic loops (the span
# key convolution took 37 ms instead of 5.5 ms per small layer, forward and backward, in a
# compiled train step); written as slices, each line is one fused loop. TensorFlow's own
# depthwise kernels are faster than these outside XLA.


def _depthwise_backward(d_output, x, kernel):
    """(d_x [B, T, W], d_kernel [K, W]) of `_depthwise_forward`."""
    kernel_size = kernel.shape[0]
    half = (kernel_size - 1) // 2
    length = tf.shape(x)[1]
    d_output32 = upcast_half(d_output)  # [B, T, W]
    padded = tf.pad(upcast_half(x), [[0, 0], [half, half], [0, 0]])  # [B, T + K - 1, W]
    # Summed over T first, then B: XLA:CPU is about 2x slower reducing both axes at once.
    d_kernel = tf.reduce_sum(tf.stack([tf.reduce_sum(d_output32 * padded[:, i:i + length], axis=1)
                                       for i in range(kernel_size)]), axis=1)  # [K, W]
    padded_grad = tf.pad(d_output32, [[0, 0], [half, half], [0, 0]])  # [B, T + K - 1, W]
    kernel32 = upcast_half(kernel)  # [K, W]
    d_x = padded_grad[:, kernel_size - 1:kernel_size - 1 + length] * kernel32[0]  # [B, T, W]
    for i in range(1, kernel_size):
        start = kernel_size - 1 - i  # row s + h - i of the unpadded d_output
        d_x += padded_grad[:, start:start + length] * kernel32[i]  # [B, T, W]
    return tf.cast(d_x, x.dtype), tf.cast(d_kernel, kernel.dtype)


_depthwise_plain, _depthwise_xla = fused_op(_depthwise_forward, _depthwise_backward)


def depthwise_conv1d(x, kernel):
    """A depthwise convolution along T with 'same' zero padding, as K shifted slices, forward
    and backward each one XLA loop (outside `without_xla()`).

    Gives `tf.nn.depthwise_conv2d` on x[:, None] with the kernel [1, K, W, 1] (Keras's
    SeparableConv1D's depthwise step) to float rounding.

    Args:
        x: [B, T, W]; half precision is accumulated in float32 and rounded once.
        kernel: [K, W], K odd, in the dtype of x.

    Returns:
        [B, T, W] in the dtype of x.
    """
    static_odd_kernel_size(kernel.shape[0], "depthwise_conv1d")
    return (_depthwise_xla if xla_fusion_allowed() else _depthwise_plain)(x, kernel)

