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
