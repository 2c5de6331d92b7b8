"""Layer-level checks: serialization round trips, NumPy twins of the pure math, gradient checks."""

import numpy as np
import pytest
import tensorflow as tf

from convbert_tf.layers import GroupedDense, MixedAttention, SpanDynamicConv
from convbert_tf.layers.grouped_dense import grouped_feed_forward
import numpy_reference as ref

RNG = np.random.default_rng(0)

@pytest.mark.parametrize("groups", [1, 2, 4])
def test_grouped_dense_is_block_diagonal_dense(groups):
    layer = GroupedDense(8, groups, initializer_range=0.5)
    x = RNG.normal(size=(2, 3, 12)).astype(np.float32)
    y = layer(tf.constant(x)).numpy()
    kernel = layer.kernel.numpy()
    if groups == 1:
        dense = kernel
    else:
        assert kernel.shape == (groups, 12 // groups, 8 // groups)
        dense = np.zeros((12, 8), np.float32)
        for g in range(groups):  # contiguous chunks, no shuffle
            dense[g * 12 // groups:(g + 1) * 12 // groups, g * 8 // groups:(g + 1) * 8 // groups] = kernel[g]
    layer.bias.assign(RNG.normal(size=8).astype(np.float32))
    np.testing.assert_allclose(layer(tf.constant(x)).numpy(), x @ dense + layer.bias.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(y, x @ dense, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("groups", [1, 2, 3])
def test_grouped_feed_forward_matches_the_two_layers_and_numpy(groups):
    """The block's batched grouped FFN = GroupedDense twice (forward and gradients) = the NumPy twin."""
    first = GroupedDense(24, groups, activation="gelu", initializer_range=0.3)
    second = GroupedDense(6, groups, initializer_range=0.3)
    x = tf.constant(RNG.normal(size=(2, 5, 12)), tf.float32)
    first.build(x.shape)
    second.build((2, 5, 24))
    for layer in (first, second):
        layer.bias.assign(RNG.normal(size=layer.bias.shape))
    d_out = tf.constant(RNG.normal(size=(2, 5, 6)), tf.float32)

    def value_and_grads(fn):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = fn(x)
            loss = tf.reduce_sum(y * d_out)
        return [y] + tape.gradient(loss, [x] + first.trainable_weights + second.trainable_weights)

    fused = tf.function(lambda: value_and_grads(lambda v: grouped_feed_forward(v, first, second)))()
    layered = value_and_grads(lambda v: second(first(v)))
    for got, want in zip(fused, layered):
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-5, atol=1e-5)
    kernel1, kernel2 = first.kernel.numpy(), second.kernel.numpy()
    if groups == 1:
        kernel1, kernel2 = kernel1[None], kernel2[None]
    hidden = ref.np_gelu(ref.np_grouped_linear(x.numpy(), kernel1, first.bias.numpy()))
    np.testing.assert_allclose(fused[0].numpy(), ref.np_grouped_linear(hidden, kernel2, second.bias.numpy()),
                               rtol=1e-5, atol=1e-5)


def test_grouped_dense_rejects_widths_that_do_not_divide():
    with pytest.raises(ValueError, match="divisible"):
        GroupedDense(9, groups=2)
    with pytest.raises(ValueError, match="input width"):
        GroupedDense(8, groups=2)(tf.zeros((1, 2, 5)))


def test_mixed_attention_width_invariants():
    # head_ratio 4: 8 heads -> 2 attention + 2 conv heads of size 6, mixed width 24 = D / 2.
    layer = MixedAttention(48, 8, head_ratio=4, conv_kernel_size=3)
    assert (layer.num_heads, layer.head_size, layer.mixed_width) == (2, 6, 24)
    out = layer(tf.zeros((1, 4, 48)))
    assert out.shape == (1, 4, 48)
    assert layer.output_dense.kernel.shape == (24, 48)
    # noconv keeps the reduced heads only: a reduced-width BERT, as in the original.
    noconv = MixedAttention(48, 8, head_ratio=2, conv_type="noconv")
    noconv(tf.zeros((1, 4, 48)))
    assert noconv.span_conv is None and noconv.output_dense.kernel.shape == (24, 48)
    with pytest.raises(ValueError, match="divisible"):
        MixedAttention(50, 8)


def _input_gradient_error(fn, inputs):
    theoretical, numerical = tf.test.compute_gradient(fn, inputs, delta=1e-6)
    return max(np.max(np.abs(t - n)) for t, n in zip(theoretical, numerical))


def _weight_gradient_check(layer, fn, eps=1e-6, atol=1e-6):
    """Analytic gradients of sum(fn() * P) w.r.t. every weight against central differences."""
    projection = tf.constant(RNG.normal(size=fn().shape))
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(fn() * projection)
    analytic = tape.gradient(loss, layer.trainable_weights)
    assert all(g is not None for g in analytic)
    for weight, grad in zip(layer.trainable_weights, analytic):
        base = weight.numpy()
        numeric = np.zeros_like(base)
        for index in np.ndindex(base.shape):
            for sign in (1.0, -1.0):
                bumped = base.copy()
                bumped[index] += sign * eps
                weight.assign(bumped)
                numeric[index] += sign * float(tf.reduce_sum(fn() * projection)) / (2 * eps)
        weight.assign(base)
        np.testing.assert_allclose(tf.convert_to_tensor(grad).numpy(), numeric, atol=atol,
                                   err_msg=weight.path)


def test_span_conv_gradient_check():
    layer = SpanDynamicConv(2, 3, 3, initializer_range=0.3, dtype="float64")
    hidden = tf.constant(RNG.normal(size=(2, 5, 4)))
    query = tf.constant(RNG.normal(size=(2, 5, 6)))
    layer(hidden, query)
    assert _input_gradient_error(lambda h, q: layer(h, q), [hidden, query]) < 1e-6
    _weight_gradient_check(layer, lambda: layer(hidden, query))


def test_mixed_attention_gradient_check():
    layer = MixedAttention(8, 4, head_ratio=2, conv_kernel_size=3, initializer_range=0.3, dtype="float64")
    hidden = tf.constant(RNG.normal(size=(2, 5, 8)))
    mask = tf.constant([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])
    layer(hidden, mask)
    assert _input_gradient_error(lambda h: layer(h, mask), [hidden]) < 1e-6
    _weight_gradient_check(layer, lambda: layer(hidden, mask))
