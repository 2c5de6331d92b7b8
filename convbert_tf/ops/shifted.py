"""The span convolution's window sum and the span key's depthwise convolution as K shifted
slices, in keras.ops (any backend): no [B, T, C, K] window tensor is built, and under jax.jit (or
XLA on tensorflow) the K products and sums become one fused loop. On tensorflow these are also
the forwards of the fused ops in ops/fused_windows.py, which add hand-written gradients.

Legend: B batch, T length, N heads, H head size, K kernel size, h = (K-1)/2, W channels.

    window sum:  output[t, n] = sum_i span_kernel[t, n, i] * values[t + i - h, n]   (values 0 outside)
    depthwise:   output[t, w] = sum_i kernel[i, w] * x[t + i - h, w]                 (x 0 outside)

Half-precision inputs are accumulated in float32 and the results rounded once.
"""

import keras

from convbert_tf.ops.tensors import upcast_half


def pad_length(tensor, before, after):
    """Zero-pads axis 1 (T) of a [B, T, ...] tensor."""
    return keras.ops.pad(tensor, [[0, 0], [before, after]] + [[0, 0]] * (len(tensor.shape) - 2))


def static_odd_kernel_size(size, what):
    """`size` if it is a static odd int, else a ValueError naming `what`."""
    if size is None or size % 2 != 1:
        raise ValueError(f"{what} needs a static odd kernel size, got {size}")
    return size


def window_sum(values, span_kernel):
    """values [B, T, N, H], span_kernel [B, T, N, K] -> [B, T, N, H] (the formula above)."""
    kernel_size = span_kernel.shape[-1]
    half = (kernel_size - 1) // 2
    length = keras.ops.shape(values)[1]
    padded = pad_length(upcast_half(values), half, half)  # [B, T + K - 1, N, H]
    span_kernel = upcast_half(span_kernel)  # [B, T, N, K]
    output = padded[:, 0:length] * span_kernel[..., 0:1]  # [B, T, N, H]
    for i in range(1, kernel_size):
        output += padded[:, i:i + length] * span_kernel[..., i:i + 1]  # [B, T, N, H]
    return keras.ops.cast(output, values.dtype)


def depthwise(x, kernel):
    """x [B, T, W], kernel [K, W] -> [B, T, W] (the formula above, 'same' zero padding)."""
    kernel_size = kernel.shape[0]
    half = (kernel_size - 1) // 2
    length = keras.ops.shape(x)[1]
    padded = pad_length(upcast_half(x), half, half)  # [B, T + K - 1, W]
    kernel32 = upcast_half(kernel)  # [K, W]
    output = padded[:, 0:length] * kernel32[0]  # [B, T, W]
    for i in range(1, kernel_size):
        output += padded[:, i:i + length] * kernel32[i]  # [B, T, W]
    return keras.ops.cast(output, x.dtype)


def shifted_window_sum(values, span_kernel, jit_compile=False):
    """The span convolution's dynamic window sum as K shifted slices (no window unfold), with
    the backend's own gradient. `jit_compile` is the tensorflow fused op's switch; here the
    caller's jax.jit / torch.compile decides. Shapes as `window_sum`."""
    static_odd_kernel_size(span_kernel.shape[-1], "shifted_window_sum")
    return window_sum(values, span_kernel)


def depthwise_conv1d(x, kernel):
    """A depthwise convolution along T with 'same' zero padding as K shifted slices, with the
    backend's own gradient. x [B, T, W], kernel [K, W] -> [B, T, W]."""
    static_odd_kernel_size(kernel.shape[0], "depthwise_conv1d")
    return depthwise(x, kernel)
