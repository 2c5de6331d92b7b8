"""Weight-free tensor math shared by the layers: masks and the span-convolution window unfold.

Legend: B batch, T length, C channels, K kernel (window) size, N heads, H head size.
"""

import tensorflow as tf

# Additive score for padded keys, as in the original release (exp(-10000) underflows to 0).
MASKED_SCORE = -10000.0


def attention_bias_from_padding_mask(padding_mask, dtype=tf.float32):
    """[B, T] padding mask (1 = keep) -> [B, 1, 1, T] additive bias: 0 to keep, -10000 to drop.

    Only keys are masked; padded queries still attend, as in the original.
    """
    padding_mask = tf.cast(padding_mask, dtype)  # [B, T]
    return ((1.0 - padding_mask) * MASKED_SCORE)[:, None, None, :]  # [B, 1, 1, T]


def unfold_windows(values, kernel_size):
    """Gathers each position's window of `kernel_size` neighbours.

    Args:
        values: [B, T, C].
        kernel_size: odd K; the window of position t covers t - (K-1)/2 ... t + (K-1)/2.

    Returns:
        [B, T, C, K] where [:, t, :, i] = values[:, t + i - (K-1)/2, :], zero outside 0..T-1.
    """
    if kernel_size % 2 != 1:
        raise ValueError(f"unfold_windows needs an odd kernel_size, got {kernel_size}")
    half = (kernel_size - 1) // 2
    length = tf.shape(values)[1]
    padded = tf.pad(values, [[0, 0], [half, half], [0, 0]])  # [B, T + K - 1, C]
    windows = [padded[:, i:i + length, :] for i in range(kernel_size)]  # K x [B, T, C]
    return tf.stack(windows, axis=-1)  # [B, T, C, K]


def shape_list(tensor):
    """The tensor's dimensions as a list: Python ints where static, scalar tensors where not."""
    dynamic = tf.shape(tensor)
    return [dim if dim is not None else dynamic[i] for i, dim in enumerate(tensor.shape.as_list())]


# LayerNorm epsilon hard-coded by the original release (tf.contrib.layers.layer_norm).
LAYER_NORM_EPSILON = 1e-12


def upcast_half(tensor):
    """Half-precision (float16 / bfloat16) tensors cast to float32; others unchanged."""
    if tensor.dtype in (tf.float16, tf.bfloat16):
        return tf.cast(tensor, tf.float32)
    return tensor


# ----- the span convolution without the unfold -------------------------------------------------
# Legend here: B batch, T length, N heads, H head size, K kernel size, h = (K-1)/2.
#
#   output[t, n]        = sum_i span_kernel[t, n, i] * values[t + i - h, n]        (values 0 outside)
#   d_kernel[t, n, i]   = sum_H d_output[t, n] * values[t + i - h, n]
#   d_values[s, n]      = sum_i span_kernel[s + h - i, n, i] * d_output[s + h - i, n]
#
# Each line is K shifted slices multiplied and added: no [B, T, C, K] window tensor is ever built,
# and the backward keeps only `values` and `span_kernel` (the unfold keeps all K windows).
# Half-precision inputs are accumulated in float32 and the results rounded once.


def _pad_length(tensor, before, after):
    """Zero-pads axis 1 (T) of a [B, T, ...] tensor of rank 4."""
    return tf.pad(tensor, [[0, 0], [before, after], [0, 0], [0, 0]])


def _window_sum_forward(values, span_kernel):
    """values [B, T, N, H], span_kernel [B, T, N, K] -> [B, T, N, H] (see the formulas above)."""
    kernel_size = span_kernel.shape[-1]
    half = (kernel_size - 1) // 2
    length = tf.shape(values)[1]
    padded = _pad_length(upcast_half(values), half, half)  # [B, T + K - 1, N, H]
    span_kernel = upcast_half(span_kernel)  # [B, T, N, K]
    output = padded[:, 0:length] * span_kernel[..., 0:1]  # [B, T, N, H]
    for i in range(1, kernel_size):
        output += padded[:, i:i + length] * span_kernel[..., i:i + 1]  # [B, T, N, H]
    return tf.cast(output, values.dtype)


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


_window_sum_forward_xla = tf.function(_window_sum_forward, jit_compile=True, autograph=False)
_window_sum_backward_xla = tf.function(_window_sum_backward, jit_compile=True, autograph=False)


@tf.custom_gradient
def _shifted_window_sum(values, span_kernel):
    def grad(d_output):
        return _window_sum_backward(d_output, values, span_kernel)
    return _window_sum_forward(values, span_kernel), grad


@tf.custom_gradient
def _shifted_window_sum_xla(values, span_kernel):
    def grad(d_output):
        return _window_sum_backward_xla(d_output, values, span_kernel)
    return _window_sum_forward_xla(values, span_kernel), grad


def shifted_window_sum(values, span_kernel, jit_compile=False):
    """The span convolution's dynamic window sum, as K shifted slices (no window unfold).

    Gives `einsum("BTNHK,BTNK->BTNH", unfold_windows(values), span_kernel)` (heads split)
    without building the [B, T, N, H, K] windows; its gradient is written out the same way.

    Args:
        values: [B, T, N, H] (zero outside 0..T-1).
        span_kernel: [B, T, N, K] one kernel per position and head, K odd.
        jit_compile: compile the forward and the backward with XLA, each into one loop over
            the output (the K products are then never written to memory).

    Returns:
        [B, T, N, H], in the dtype of `values`; half precision is accumulated in float32.
    """
    kernel_size = span_kernel.shape[-1]
    if kernel_size is None or kernel_size % 2 != 1:
        raise ValueError(f"shifted_window_sum needs a static odd kernel size, got {kernel_size}")
    if jit_compile:
        return _shifted_window_sum_xla(values, span_kernel)
    return _shifted_window_sum(values, span_kernel)
