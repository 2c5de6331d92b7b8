"""The span convolution's window unfold, in keras.ops: the plain reference the shifted window
sum is tested against.

Legend: B batch, T length, C channels, K kernel (window) size.
"""

import keras


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
    length = keras.ops.shape(values)[1]
    padded = keras.ops.pad(values, [[0, 0], [half, half], [0, 0]])  # [B, T + K - 1, C]
    windows = [padded[:, i:i + length, :] for i in range(kernel_size)]  # K x [B, T, C]
    return keras.ops.stack(windows, axis=-1)  # [B, T, C, K]
