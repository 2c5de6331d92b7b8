"""The span convolution's window sum and the key's depthwise convolution as shifted slices
(ops/fused_windows.py) against NumPy twins and the plain TensorFlow formulations, forward and
gradients, compiled by XLA and not.

Legend: B batch, T length, N heads, H head size, C = N * H, K kernel size, W channels.
"""

import numpy as np
import pytest
import tensorflow as tf

from convbert_tf import ops

ATOL = 1e-5


def np_window_sum(values, span_kernel):
    """NumPy twin of ops.shifted_window_sum: values [B, T, N, H], span_kernel [B, T, N, K]."""
    kernel_size = span_kernel.shape[-1]
    half = (kernel_size - 1) // 2
    length = values.shape[1]
    output = np.zeros_like(values, dtype=np.float64)
    for t in range(length):
        for i in range(kernel_size):
            s = t + i - half
            if 0 <= s < length:
                output[:, t] += span_kernel[:, t, :, i, None] * values[:, s]  # [B, N, H]
    return output


@pytest.mark.parametrize("jit_compile", [False, True])
@pytest.mark.parametrize("kernel_size,length", [(1, 6), (3, 6), (9, 12), (9, 4)])
def test_shifted_window_sum_matches_numpy_and_unfold_gradients(kernel_size, length, jit_compile):
    rng = np.random.default_rng(kernel_size * 100 + length)
    batch, heads, head_size = 2, 3, 4
    values = tf.constant(rng.normal(size=(batch, length, heads, head_size)), tf.float32)
    span_kernel = tf.constant(rng.normal(size=(batch, length, heads, kernel_size)), tf.float32)
    d_output = tf.constant(rng.normal(size=(batch, length, heads, head_size)), tf.float32)

    def unfold_reference(values, span_kernel):
        flat = tf.reshape(values, [batch, length, heads * head_size])  # [B, T, C]
        windows = tf.reshape(ops.unfold_windows(flat, kernel_size),
                             [batch, length, heads, head_size, kernel_size])  # [B, T, N, H, K]
        return tf.einsum("BTNHK,BTNK->BTNH", windows, span_kernel)  # [B, T, N, H]

    results = []
    for fn in (unfold_reference, lambda v, k: ops.shifted_window_sum(v, k, jit_compile=jit_compile)):
        with tf.GradientTape() as tape:
            tape.watch([values, span_kernel])
            output = fn(values, span_kernel)
            loss = tf.reduce_sum(output * d_output)
        results.append([output.numpy()] + [g.numpy() for g in tape.gradient(loss, [values, span_kernel])])
    np.testing.assert_allclose(results[1][0], np_window_sum(values.numpy(), span_kernel.numpy()),
                               atol=ATOL, rtol=0)
    for got, want in zip(results[1], results[0]):
        np.testing.assert_allclose(got, want, atol=ATOL, rtol=0)


def np_depthwise_conv1d(x, kernel):
    """NumPy twin of ops.depthwise_conv1d: x [B, T, W], kernel [K, W], 'same' zero padding."""
    half = (kernel.shape[0] - 1) // 2
    padded = np.pad(x.astype(np.float64), [(0, 0), (half, half), (0, 0)])
    return sum(padded[:, i:i + x.shape[1]] * kernel[i] for i in range(kernel.shape[0]))


@pytest.mark.parametrize("xla", [False, True])
@pytest.mark.parametrize("kernel_size,length", [(1, 5), (3, 6), (9, 12), (9, 4)])
def test_depthwise_conv1d_matches_numpy_and_tensorflow_gradients(kernel_size, length, xla):
    rng = np.random.default_rng(kernel_size * 10 + length)
    x = tf.constant(rng.normal(size=(2, length, 6)), tf.float32)
    kernel = tf.constant(rng.normal(size=(kernel_size, 6)), tf.float32)
    d_output = tf.constant(rng.normal(size=(2, length, 6)), tf.float32)

    def tensorflow_reference(x, kernel):
        return tf.nn.depthwise_conv2d(x[:, None], kernel[None, :, :, None], [1, 1, 1, 1], "SAME")[:, 0]

    results = []
    for fn in (tensorflow_reference, ops.depthwise_conv1d):
        with tf.GradientTape() as tape:
            tape.watch([x, kernel])
            if xla:
                output = fn(x, kernel)
            else:
                with ops.without_xla():
                    output = fn(x, kernel)
            loss = tf.reduce_sum(output * d_output)
        results.append([output.numpy()] + [g.numpy() for g in tape.gradient(loss, [x, kernel])])
    np.testing.assert_allclose(results[1][0], np_depthwise_conv1d(x.numpy(), kernel.numpy()), atol=ATOL, rtol=0)
    for got, want in zip(results[1], results[0]):
        np.testing.assert_allclose(got, want, atol=ATOL, rtol=0)
