"""The XLA-fused GELU and LayerNorm against NumPy twins and TensorFlow's / Keras's own ops.

Forward values and gradients agree to float32 rounding; half-precision inputs are computed in
float32 and rounded once; inside `ops.without_xla()` the same layers trace without XLA.
"""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from convbert_tf import ops
from convbert_tf.layers import LayerNorm
from numpy_reference import np_gelu, np_layer_norm

ERF = np.vectorize(math.erf)


def np_gelu_slope(x):
    """d/dx of x * Phi(x): Phi(x) + x * phi(x), in float64."""
    return 0.5 * (1.0 + ERF(x / math.sqrt(2.0))) + x * np.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)


def np_layer_norm_grads(x, gamma, d_out, eps):
    """(d_x, d_gamma, d_beta) of LayerNorm over the last axis, in float64, from the definition."""
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    x_hat = (x - mean) / np.sqrt(var + eps)
    d_x_hat = d_out * gamma
    width = x.shape[-1]
    d_x = (width * d_x_hat - d_x_hat.sum(-1, keepdims=True)
           - x_hat * (d_x_hat * x_hat).sum(-1, keepdims=True)) / (width * np.sqrt(var + eps))
    axes = tuple(range(x.ndim - 1))
    return d_x, (d_out * x_hat).sum(axes), d_out.sum(axes)


def value_and_grads(fn, inputs, d_out):
    with tf.GradientTape() as tape:
        tape.watch(inputs)
        out = fn(*inputs)
        loss = tf.reduce_sum(tf.cast(out, tf.float32) * d_out)
    return out, tape.gradient(loss, inputs)


def run_traced(fn, xla, *inputs):
    """fn(*inputs) in a tf.function traced with the fused ops compiled (xla) or as plain ops."""
    if xla:
        return tf.function(fn)(*inputs)
    with ops.without_xla():
        return tf.function(fn)(*inputs)


@pytest.mark.parametrize("xla", [True, False])
def test_gelu_matches_numpy_and_tf(xla):
    rng = np.random.default_rng(0)
    x = rng.normal(scale=3.0, size=(4, 7, 33))
    d_out = rng.normal(size=x.shape)
    x_tf, d_tf = tf.constant(x, tf.float32), tf.constant(d_out, tf.float32)
    out, (grad,) = run_traced(lambda x: value_and_grads(ops.gelu, [x], d_tf), xla, x_tf)
    # The original's form 0.5 * (1 + erf(x / sqrt(2))) in float32: |error| ~1e-6 where erf
    # saturates (x < -5, GELU ~ 0), float32 rounding elsewhere.
    np.testing.assert_allclose(out.numpy(), np_gelu(x), rtol=1e-5, atol=2e-6)
    np.testing.assert_allclose(grad.numpy(), d_out * np_gelu_slope(x), rtol=1e-5, atol=1e-5)
    tf_out, (tf_grad,) = value_and_grads(lambda x: tf.nn.gelu(x, approximate=False), [x_tf], d_tf)
    np.testing.assert_allclose(out.numpy(), tf_out.numpy(), rtol=1e-6, atol=2e-6)
    np.testing.assert_allclose(grad.numpy(), tf_grad.numpy(), rtol=1e-5, atol=1e-6)
    original_form = x_tf * 0.5 * (1.0 + tf.math.erf(x_tf / tf.sqrt(2.0)))  # as the release writes it
    np.testing.assert_allclose(out.numpy(), original_form.numpy(), rtol=1e-6, atol=2e-6)


def test_gelu_in_bfloat16_is_float32_rounded_once():
    x = tf.constant(np.linspace(-6, 6, 257), tf.bfloat16)
    out, (grad,) = value_and_grads(ops.gelu, [x], tf.ones([257]))
    assert out.dtype == tf.bfloat16 and grad.dtype == tf.bfloat16
    x64 = tf.cast(x, tf.float64).numpy()
    in_float32, (grad32,) = value_and_grads(ops.gelu, [tf.cast(x, tf.float32)], tf.ones([257]))
    np.testing.assert_array_equal(out.numpy(), tf.cast(in_float32, tf.bfloat16).numpy())
    np.testing.assert_array_equal(grad.numpy(), tf.cast(grad32, tf.bfloat16).numpy())
    np.testing.assert_allclose(tf.cast(out, tf.float32).numpy(), np_gelu(x64), rtol=2 ** -8, atol=1e-6)
    np.testing.assert_allclose(tf.cast(grad, tf.float32).numpy(), np_gelu_slope(x64), rtol=2 ** -7, atol=1e-3)


@pytest.mark.parametrize("xla", [True, False])
@pytest.mark.parametrize("x_shape,bias_shape", [((2, 6, 8), (2, 1, 8)), ((3, 5, 8), (8,))])
def test_bias_gelu_matches_numpy_twin(x_shape, bias_shape, xla):
    rng = np.random.default_rng(5)
    x, bias = rng.normal(scale=2.0, size=x_shape), rng.normal(size=bias_shape)
    d_out = rng.normal(size=x_shape)
    inputs = [tf.constant(v, tf.float32) for v in (x, bias)]
    out, (d_x, d_bias) = run_traced(
        lambda *a: value_and_grads(ops.bias_gelu, list(a), tf.constant(d_out, tf.float32)), xla, *inputs)
    total = x + bias
    np.testing.assert_allclose(out.numpy(), np_gelu(total), rtol=1e-5, atol=2e-6)
    want_d_x = d_out * np_gelu_slope(total)
    np.testing.assert_allclose(d_x.numpy(), want_d_x, rtol=1e-5, atol=1e-5)
    repeated = tuple(i for i in range(len(x_shape)) if i < len(x_shape) - len(bias_shape)
                     or bias_shape[i - len(x_shape) + len(bias_shape)] == 1)
    np.testing.assert_allclose(d_bias.numpy(), want_d_x.sum(repeated).reshape(bias_shape), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("xla", [True, False])
def test_bias_gelu_in_bfloat16_is_float32_rounded_once(xla):
    rng = np.random.default_rng(6)
    x = tf.constant(rng.normal(size=(4, 16)), tf.bfloat16)
    bias = tf.constant(rng.normal(size=(16,)), tf.bfloat16)
    d_out = tf.cast(tf.constant(rng.normal(size=(4, 16)), tf.bfloat16), tf.float32)  # exact in both
    out, (d_x, d_bias) = run_traced(lambda x, b: value_and_grads(ops.bias_gelu, [x, b], d_out), xla, x, bias)
    assert out.dtype == d_x.dtype == d_bias.dtype == tf.bfloat16
    x32, bias32 = tf.cast(x, tf.float32), tf.cast(bias, tf.float32)
    want, (want_d_x, want_d_bias) = run_traced(
        lambda x, b: value_and_grads(ops.bias_gelu, [x, b], d_out), xla, x32, bias32)
    for got, expected in ((out, want), (d_x, want_d_x), (d_bias, want_d_bias)):
        np.testing.assert_array_equal(got.numpy(), tf.cast(expected, tf.bfloat16).numpy())


@pytest.mark.parametrize("xla", [True, False])
@pytest.mark.parametrize("shape", [(5, 16), (2, 3, 24)])
def test_layer_norm_matches_numpy_twin(shape, xla):
    rng = np.random.default_rng(len(shape))
    eps = 1e-12
    x = rng.normal(loc=0.5, scale=2.0, size=shape)
    gamma, beta = rng.normal(size=shape[-1]), rng.normal(size=shape[-1])
    d_out = rng.normal(size=shape)
    inputs = [tf.constant(v, tf.float32) for v in (x, gamma, beta)]
    fn = tf.function(lambda *a: value_and_grads(lambda *b: ops.layer_norm(*b, eps), list(a), tf.constant(d_out, tf.float32)))
    if xla:
        out, grads = fn(*inputs)
    else:
        with ops.without_xla():
            out, grads = fn(*inputs)
    np.testing.assert_allclose(out.numpy(), np_layer_norm(x, gamma, beta, eps), rtol=1e-5, atol=2e-5)
    for got, want in zip(grads, np_layer_norm_grads(x, gamma, d_out, eps)):
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-4, atol=2e-5)


def test_layer_norm_layer_matches_keras_and_keeps_its_weights():
    rng = np.random.default_rng(3)
    x = tf.constant(rng.normal(size=(2, 5, 12)), tf.float32)
    d_out = tf.constant(rng.normal(size=(2, 5, 12)), tf.float32)
    ours = LayerNorm(epsilon=1e-12, name="LayerNorm")
    keras_ln = keras.layers.LayerNormalization(epsilon=1e-12, name="LayerNorm")
    for layer in (ours, keras_ln):
        layer.build(x.shape)
    for var in ours.weights:
        var.assign(rng.normal(size=var.shape))
    keras_ln.set_weights(ours.get_weights())
    assert [v.path for v in ours.weights] == [v.path for v in keras_ln.weights] == ["LayerNorm/gamma", "LayerNorm/beta"]

    def grads(layer):
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(layer(x) * d_out)
        return [layer(x)] + tape.gradient(loss, [x] + layer.trainable_variables)

    for got, want in zip(tf.function(lambda: grads(ours))(), grads(keras_ln)):
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-5, atol=2e-5)
    other_axis = LayerNorm(axis=1, epsilon=1e-3)  # not the last axis: Keras's own computation
    np.testing.assert_allclose(other_axis(x).numpy(),
                               keras.layers.LayerNormalization(axis=1, epsilon=1e-3)(x).numpy(), atol=1e-6)


def test_layer_norm_under_mixed_bfloat16_normalizes_in_float32():
    layer = LayerNorm(epsilon=1e-12, dtype="mixed_bfloat16")
    x = tf.constant(np.random.default_rng(4).normal(size=(3, 64)) * 50 + 1000, tf.bfloat16)
    out = layer(x)
    assert out.dtype == tf.bfloat16 and layer.gamma.dtype == "float32"
    want = np_layer_norm(tf.cast(x, tf.float64).numpy(), np.ones(64), np.zeros(64), 1e-12)
    np.testing.assert_allclose(tf.cast(out, tf.float32).numpy(), want, atol=0.02)


def test_without_xla_traces_no_function_that_must_be_compiled():
    x = tf.zeros([2, 8])
    layer = LayerNorm()
    layer.build(x.shape)

    def compiled_functions(fn):
        graph = tf.function(fn).get_concrete_function(x).graph
        return [f.signature.name for f in graph.as_graph_def().library.function if f.attr["_XlaMustCompile"].b]

    block = lambda x: layer(ops.gelu(x))  # noqa: E731
    assert len(compiled_functions(block)) == 2  # one forward each for GELU and LayerNorm
    with ops.without_xla():
        assert compiled_functions(block) == []


# ----- dropout fused with LayerNorm / softmax --------------------------------------------------

def keep_mask(shape, seed, rate, xla):
    """The op's mask, drawn alone: compiled by XLA (xla) or by TensorFlow's kernel."""
    return tf.function(lambda: ops.dropout_keep_mask(shape, seed, rate, xla), jit_compile=xla)().numpy()


@pytest.mark.parametrize("xla", [True, False])
@pytest.mark.parametrize("rate", [0.1, 0.5])
def test_dropout_keep_mask_is_bernoulli_and_follows_the_seed(rate, xla):
    seed = tf.constant([7, 11], tf.int32)
    keep = keep_mask([200, 500], seed, rate, xla)
    sigma = math.sqrt(rate * (1 - rate) / keep.size)
    assert abs(keep.mean() - (1 - rate)) < 5 * sigma, keep.mean()
    assert abs(keep[:, :250].mean() - keep[:, 250:].mean()) < 10 * sigma  # no drift along the tensor
    np.testing.assert_array_equal(keep, keep_mask([200, 500], seed, rate, xla))
    other = keep_mask([200, 500], tf.constant([7, 12], tf.int32), rate, xla)
    agreement = (keep == other).mean()  # independent masks agree with probability p^2 + (1-p)^2
    assert abs(agreement - (rate ** 2 + (1 - rate) ** 2)) < 0.02, agreement


@pytest.mark.parametrize("xla", [True, False])
def test_dropout_add_layer_norm_matches_numpy_twin(xla):
    rng = np.random.default_rng(11)
    shape, eps, rate = (3, 4, 24), 1e-12, 0.3
    x, residual, d_out = (rng.normal(size=shape) for _ in range(3))
    gamma, beta = rng.normal(size=shape[-1]), rng.normal(size=shape[-1])
    seed = tf.constant([3, 5], tf.int32)
    inputs = [tf.constant(v, tf.float32) for v in (x, residual, gamma, beta)]
    out, (d_x, d_residual, d_gamma, d_beta) = run_traced(
        lambda *a: value_and_grads(lambda *b: ops.dropout_add_layer_norm(*b, eps, rate, seed), list(a),
                                   tf.constant(d_out, tf.float32)), xla, *inputs)
    keep = keep_mask(shape, seed, rate, xla)
    assert 0 < keep.mean() < 1
    total = residual + np.where(keep, x / (1 - rate), 0.0)
    np.testing.assert_allclose(out.numpy(), np_layer_norm(total, gamma, beta, eps), rtol=1e-5, atol=2e-5)
    want_d_total, want_d_gamma, want_d_beta = np_layer_norm_grads(total, gamma, d_out, eps)
    np.testing.assert_allclose(d_residual.numpy(), want_d_total, rtol=1e-4, atol=2e-5)
    np.testing.assert_allclose(d_x.numpy(), np.where(keep, want_d_total / (1 - rate), 0.0), rtol=1e-4, atol=2e-5)
    np.testing.assert_allclose(d_gamma.numpy(), want_d_gamma, rtol=1e-4, atol=2e-5)
    np.testing.assert_allclose(d_beta.numpy(), want_d_beta, rtol=1e-4, atol=2e-5)


@pytest.mark.parametrize("xla", [True, False])
@pytest.mark.parametrize("with_bias", [True, False])
def test_masked_softmax_dropout_matches_numpy_twin(with_bias, xla):
    rng = np.random.default_rng(12)
    shape, scale, rate = (2, 3, 5, 7), 0.4, 0.25
    scores, d_out = rng.normal(scale=3.0, size=shape), rng.normal(size=shape)
    padding = np.array([[1] * 7, [1] * 4 + [0] * 3])
    bias = ops.attention_bias_from_padding_mask(tf.constant(padding), tf.float32) if with_bias else None
    seed = tf.constant([8, 1], tf.int32)
    out, (d_scores,) = run_traced(
        lambda s: value_and_grads(lambda t: ops.masked_softmax_dropout(t, bias, scale, rate, seed), [s],
                                  tf.constant(d_out, tf.float32)), xla, tf.constant(scores, tf.float32))
    keep = keep_mask(shape, seed, rate, xla)
    logits = scores * scale + (bias.numpy() if with_bias else 0.0)
    probs = np.exp(logits - logits.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    np.testing.assert_allclose(out.numpy(), np.where(keep, probs / (1 - rate), 0.0), rtol=1e-5, atol=1e-6)
    d_probs = np.where(keep, d_out / (1 - rate), 0.0)
    want = probs * (d_probs - (d_probs * probs).sum(-1, keepdims=True)) * scale
    np.testing.assert_allclose(d_scores.numpy(), want, rtol=1e-4, atol=1e-6)
    if with_bias:  # padded keys get no probability, kept or not
        assert np.all(out.numpy()[1, ..., 4:] < 1e-30)


@pytest.mark.parametrize("xla", [True, False])
def test_fused_dropout_ops_in_bfloat16_are_float32_rounded_once(xla):
    rng = np.random.default_rng(13)
    seed = tf.constant([2, 9], tf.int32)
    x, residual, scores = (tf.constant(rng.normal(size=(4, 32)), tf.bfloat16) for _ in range(3))
    gamma, beta = tf.constant(rng.normal(size=32), tf.float32), tf.constant(rng.normal(size=32), tf.float32)
    d_out = tf.cast(tf.constant(rng.normal(size=(4, 32)), tf.bfloat16), tf.float32)  # exact in both

    def both(x, residual, scores):
        return (value_and_grads(lambda a, b: ops.dropout_add_layer_norm(a, b, gamma, beta, 1e-12, 0.2, seed),
                                [x, residual], d_out),
                value_and_grads(lambda s: ops.masked_softmax_dropout(s, None, 0.5, 0.2, seed), [scores], d_out))

    got = tf.nest.flatten(run_traced(both, xla, x, residual, scores))
    want = tf.nest.flatten(run_traced(both, xla, *(tf.cast(t, tf.float32) for t in (x, residual, scores))))
    for g, w in zip(got, want):
        assert g.dtype == tf.bfloat16
        np.testing.assert_array_equal(g.numpy(), tf.cast(w, tf.bfloat16).numpy())


def test_block_in_training_draws_each_dropout_layers_mask_in_the_fused_ops():
    """The block's fused dropouts equal LayerNorm(residual + dropout(x)) and dropout(softmax(...))
    written out with the same masks (each Dropout layer's next seed, in call order)."""
    from convbert_tf.layers import ConvBertBlock, conv_bert_block, mixed_attention

    keras.utils.set_random_seed(5)
    block = ConvBertBlock(32, 4, 64, hidden_dropout=0.2, attention_dropout=0.3, linear_groups=2)
    x = tf.constant(np.random.default_rng(14).normal(size=(2, 9, 32)), tf.float32)
    padding = tf.constant([[1] * 9, [1] * 6 + [0] * 3])
    block.build(x.shape)
    generators = [v for v in block.non_trainable_variables if "seed_generator" in v.path]
    assert len(generators) == 3
    start = [v.numpy() for v in generators]

    def dropped(dropout, v):
        keep = ops.dropout_keep_mask(tf.shape(v), ops.dropout_seed(dropout), dropout.rate, xla=True)
        return tf.where(keep, v / (1 - dropout.rate), 0.0)

    def residual_reference(dropout, norm, v, residual, training):
        return norm(residual + dropped(dropout, v))

    def probs_reference(dropout, scores, padding_mask, scale, training):
        logits = scores * scale + ops.attention_bias_from_padding_mask(padding_mask, tf.float32)
        return dropped(dropout, tf.nn.softmax(logits, axis=-1))

    def run(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = block(x, padding, training=True)
            loss = tf.reduce_sum(y * tf.sin(y))
        return [y] + tape.gradient(loss, [x] + block.trainable_variables)

    fused = tf.function(run, jit_compile=True)(x)
    for v, s in zip(generators, start):
        v.assign(s)
    saved = conv_bert_block.dropout_residual_layer_norm, mixed_attention.attention_probs_with_dropout
    conv_bert_block.dropout_residual_layer_norm, mixed_attention.attention_probs_with_dropout = (
        residual_reference, probs_reference)
    try:
        reference = tf.function(run, jit_compile=True)(x)
    finally:
        conv_bert_block.dropout_residual_layer_norm, mixed_attention.attention_probs_with_dropout = saved
    assert float(tf.reduce_mean(tf.cast(fused[0] == 0, tf.float32))) < 0.5  # LayerNorm output, not a mask
    for got, want in zip(fused, reference):
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-4, atol=1e-5)
    inference = block(x, padding, training=False)
    assert float(tf.reduce_max(tf.abs(fused[0] - inference))) > 0.01  # dropout did act


# ----- random draws under XLA ------------------------------------------------------------------

def test_in_xla_compilation_sees_jit_compile_and_the_functions_it_calls():
    probe = lambda: tf.constant(ops.in_xla_compilation())  # noqa: E731
    assert not ops.in_xla_compilation()
    assert not tf.function(probe)().numpy()
    assert tf.function(probe, jit_compile=True)().numpy()
    assert tf.function(lambda: tf.function(probe)(), jit_compile=True)().numpy()


def test_dropout_draws_the_layers_seed_with_threefry_under_xla_and_is_keras_outside():
    rate = 0.3
    dropout = keras.layers.Dropout(rate, seed=3)
    x = tf.constant(np.random.default_rng(15).normal(size=(6, 40)) + 5.0, tf.float32)  # no zeros
    state = dropout.seed_generator.state.numpy()

    def replay(fn, **function_args):
        dropout.seed_generator.state.assign(state)
        return tf.function(fn, **function_args)().numpy()

    plain = replay(lambda: ops.dropout(dropout, x, training=True))
    np.testing.assert_array_equal(plain, replay(lambda: dropout(x, training=True)))  # Keras's own stream
    compiled = replay(lambda: ops.dropout(dropout, x, training=True), jit_compile=True)
    assert not np.array_equal(dropout.seed_generator.state.numpy(), state)  # the call advanced it
    keep = replay(lambda: ops.dropout_keep_mask(tf.shape(x), ops.dropout_seed(dropout), rate, xla=True),
                  jit_compile=True)
    np.testing.assert_allclose(compiled, np.where(keep, x.numpy() / (1 - rate), 0.0), rtol=1e-6)
    assert abs(keep.mean() - (1 - rate)) < 0.1 and not np.array_equal(keep, plain != 0)  # another stream
    np.testing.assert_array_equal(ops.dropout(dropout, x, training=False).numpy(), x.numpy())
    no_dropout = keras.layers.Dropout(0.0)
    np.testing.assert_array_equal(
        tf.function(lambda: ops.dropout(no_dropout, x, training=True), jit_compile=True)().numpy(), x.numpy())
