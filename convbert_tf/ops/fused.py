"""The XLA-fused elementwise ops the layers use: GELU, bias + GELU, LayerNorm, dropout (with
ThreeFry under XLA), softmax + dropout and dropout + residual add + LayerNorm.

Each runs forward and backward as one XLA loop (outside `without_xla()`; inside it, the same
math as TensorFlow ops). Under `reference_math()` the layers bypass them for TensorFlow's and
Keras's own ops (see ops/xla.py).

Legend: W the normalized or activated width; S the softmax axis.
"""

import math

import tensorflow as tf

from convbert_tf.ops.masks import scaled_softmax
from convbert_tf.ops.tensors import upcast_half
from convbert_tf.ops.switches import reference_math_active, xla_fusion_allowed
from convbert_tf.ops.xla import compiled, dropout_keep_mask, dropout_seed, fused_op, in_xla_compilation

_SQRT_HALF = 1.0 / math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


def _gelu_cdf(x32):
    """Phi(x) = 0.5 * (1 + erf(x / sqrt(2))), the original's form (float32 in, float32 out)."""
    return 0.5 * (1.0 + tf.math.erf(x32 * _SQRT_HALF))


def _gelu_slope(x32):
    """d/dx of x * Phi(x): Phi(x) + x * phi(x)."""
    return _gelu_cdf(x32) + x32 * tf.exp(-0.5 * x32 * x32) * _INV_SQRT_2PI


def _gelu_forward(x):
    x32 = upcast_half(x)
    return tf.cast(x32 * _gelu_cdf(x32), x.dtype)


def _gelu_backward(d_output, x):
    return tf.cast(upcast_half(d_output) * _gelu_slope(upcast_half(x)), x.dtype)


_gelu_plain, _gelu_xla = fused_op(_gelu_forward, _gelu_backward)


def gelu(x):
    """Exact GELU, x * 0.5 * (1 + erf(x / sqrt(2))), in the original release's form.

    Forward and backward each run as one XLA loop (outside `without_xla()`; inside it, the
    same math as TensorFlow ops). Half precision is computed in float32 and rounded once.
    The erf form costs XLA half of the erfc form's time (TensorFlow's `tf.nn.gelu`); the two
    agree to 2e-6 in float32. The erf form loses relative precision only where GELU is ~0
    (x < -3: 1 + erf(...) is a difference of nearly equal numbers), as in the original.
    Under `reference_math()`: TensorFlow's `tf.nn.gelu(x, approximate=False)`.
    """
    if reference_math_active("elementwise"):
        return tf.nn.gelu(x, approximate=False)
    return (_gelu_xla if xla_fusion_allowed() else _gelu_plain)(x)


def _broadcast_axes(bias, x):
    """Axes of x over which a broadcast `bias` (rank 1, or x's rank with size-1 axes) repeats."""
    lead = len(x.shape) - len(bias.shape)
    return list(range(lead)) + [lead + i for i, size in enumerate(bias.shape) if size == 1]


def _bias_gelu_forward(x, bias):
    total = upcast_half(x) + upcast_half(bias)  # float32: XLA would not round a half sum anyway
    return tf.cast(total * _gelu_cdf(total), x.dtype)


def _bias_gelu_backward(d_output, x, bias):
    d_total = upcast_half(d_output) * _gelu_slope(upcast_half(x) + upcast_half(bias))
    d_bias = tf.reshape(tf.reduce_sum(d_total, axis=_broadcast_axes(bias, x)), bias.shape)
    return tf.cast(d_total, x.dtype), tf.cast(d_bias, bias.dtype)


_bias_gelu_plain, _bias_gelu_xla = fused_op(_bias_gelu_forward, _bias_gelu_backward)


def bias_gelu(x, bias):
    """gelu(x + bias) with the bias add in the same XLA loop, forward and backward (the
    bias gradient is summed in float32 inside the backward loop). Half precision is added,
    activated and summed in float32 and rounded once.

    Args:
        x: [..., W]; bias: [W], or x's rank with size-1 axes where it repeats (e.g. [G, 1, W]),
            in x's dtype.

    Under `reference_math()`: TensorFlow's `tf.nn.gelu` after a separate bias add.
    """
    if reference_math_active("elementwise"):
        return tf.nn.gelu(x + bias, approximate=False)
    return (_bias_gelu_xla if xla_fusion_allowed() else _bias_gelu_plain)(x, bias)


def _normalized(x32, epsilon):
    """(x - mean) / sqrt(var + eps) over the last axis, and 1 / sqrt(var + eps)."""
    mean = tf.reduce_mean(x32, axis=-1, keepdims=True)  # [..., 1]
    centered = x32 - mean
    inverse = tf.math.rsqrt(tf.reduce_mean(centered * centered, axis=-1, keepdims=True) + epsilon)  # [..., 1]
    return centered * inverse, inverse


def _layer_norm_ops(epsilon):
    def forward(x, gamma, beta):
        x_hat, _ = _normalized(upcast_half(x), epsilon)
        return tf.cast(x_hat * gamma + beta, x.dtype)

    def backward(d_output, x, gamma, beta):
        x_hat, inverse = _normalized(upcast_half(x), epsilon)  # [..., W], [..., 1]
        d_x, d_gamma, d_beta = _layer_norm_gradients(d_output, x_hat, inverse, gamma)
        return tf.cast(d_x, x.dtype), d_gamma, d_beta

    return fused_op(forward, backward)


def _layer_norm_gradients(d_output, x_hat, inverse, gamma):
    """(d_x, d_gamma, d_beta) in float32 of x_hat * gamma + beta, x_hat = (x - mean) * inverse."""
    d_output = upcast_half(d_output)
    d_x_hat = d_output * gamma
    d_x = inverse * (d_x_hat - tf.reduce_mean(d_x_hat, axis=-1, keepdims=True)
                     - x_hat * tf.reduce_mean(d_x_hat * x_hat, axis=-1, keepdims=True))
    leading = list(range(len(x_hat.shape) - 1))
    return d_x, tf.reduce_sum(d_output * x_hat, axis=leading), tf.reduce_sum(d_output, axis=leading)


_layer_norm_ops_by_epsilon = {}  # epsilon -> (plain, compiled)


def layer_norm(x, gamma, beta, epsilon):
    """LayerNorm over the last axis, forward and backward each one XLA loop (outside
    `without_xla()`; inside it the same math as TensorFlow ops).

    Args:
        x: [..., W], any float dtype (half precision is normalized in float32, as Keras does).
        gamma, beta: [W] float32 scale and offset (tensors, not variables).
        epsilon: added to the variance.

    Returns:
        [..., W] in the dtype of x.
    """
    if epsilon not in _layer_norm_ops_by_epsilon:
        _layer_norm_ops_by_epsilon[epsilon] = _layer_norm_ops(epsilon)
    plain, xla_op = _layer_norm_ops_by_epsilon[epsilon]
    return (xla_op if xla_fusion_allowed() else plain)(x, gamma, beta)


def dropout(layer, x, training):
    """`layer(x, training=training)` for a Keras Dropout layer, except that under XLA
    compilation the mask is drawn with ThreeFry (from the layer's seed generator, advanced
    as its call would) instead of XLA's slow default generator. Under `reference_math()`, always
    the layer's own call. [...] in, [...] out."""
    if (not training or not layer.rate or layer.noise_shape is not None or not in_xla_compilation()
            or reference_math_active("elementwise")):
        return layer(x, training=training)
    keep = dropout_keep_mask(tf.shape(x), dropout_seed(layer), layer.rate, xla=True)
    return tf.where(keep, x * tf.cast(1.0 / (1.0 - layer.rate), x.dtype), tf.zeros_like(x))



def _dropped_sum(x, residual, keep, rate):
    """residual + dropout(x) in float32, for a given keep mask."""
    return upcast_half(residual) + tf.where(keep, upcast_half(x) * (1.0 / (1.0 - rate)), 0.0)


def _dropout_add_layer_norm_forward(x, residual, gamma, beta, seed, rate, epsilon, xla):
    keep = dropout_keep_mask(tf.shape(x), seed, rate, xla)
    x_hat, _ = _normalized(_dropped_sum(x, residual, keep, rate), epsilon)
    return tf.cast(x_hat * gamma + beta, x.dtype), keep


def _dropout_add_layer_norm_backward(d_output, x, residual, gamma, keep, rate, epsilon):
    x_hat, inverse = _normalized(_dropped_sum(x, residual, keep, rate), epsilon)
    d_sum, d_gamma, d_beta = _layer_norm_gradients(d_output, x_hat, inverse, gamma)
    d_x = tf.where(keep, d_sum * (1.0 / (1.0 - rate)), 0.0)
    return tf.cast(d_x, x.dtype), tf.cast(d_sum, residual.dtype), d_gamma, d_beta


def _masked_softmax_dropout_forward(scores, bias, seed, scale, rate, xla):
    keep = dropout_keep_mask(tf.shape(scores), seed, rate, xla)
    probs = scaled_softmax(scores, bias, scale)
    return tf.cast(tf.where(keep, probs * (1.0 / (1.0 - rate)), 0.0), scores.dtype), probs, keep


def _masked_softmax_dropout_backward(d_output, probs, keep, scale, rate):
    d_probs = tf.where(keep, upcast_half(d_output) * (1.0 / (1.0 - rate)), 0.0)
    d_logits = probs * (d_probs - tf.reduce_sum(d_probs * probs, axis=-1, keepdims=True))
    return tf.cast(d_logits * scale, d_output.dtype)


_DROPOUT_FUNCTIONS = {
    # name: (plain forward, plain backward, compiled forward, compiled backward)
    name: (forward, backward, compiled(forward), compiled(backward))
    for name, forward, backward in (
        ("add_layer_norm", _dropout_add_layer_norm_forward, _dropout_add_layer_norm_backward),
        ("softmax", _masked_softmax_dropout_forward, _masked_softmax_dropout_backward))}


def _dropout_functions(name):
    """(forward, backward, xla) of a fused dropout op, compiled unless inside `without_xla()`."""
    plain_forward, plain_backward, forward, backward = _DROPOUT_FUNCTIONS[name]
    xla = xla_fusion_allowed()
    return (forward, backward, xla) if xla else (plain_forward, plain_backward, xla)


def dropout_add_layer_norm(x, residual, gamma, beta, epsilon, rate, seed):
    """LayerNorm(residual + dropout(x)) over the last axis, training mode, forward and backward
    each one XLA loop with the dropout mask drawn inside (outside `without_xla()`; inside it
    the same math as TensorFlow ops, the mask drawn by TensorFlow's Philox kernel).

    Only the inputs and the 1-byte keep mask are kept for the backward pass. Half precision is
    summed and normalized in float32 and rounded once.

    Args:
        x: [..., W] the tensor dropped out; residual: [..., W], the same dtype.
        gamma, beta: [W] float32 scale and offset (tensors, not variables).
        epsilon: added to the variance. rate: dropout rate in (0, 1). seed: [2] int32.

    Returns:
        [..., W] in the dtype of x.
    """
    forward, backward, xla = _dropout_functions("add_layer_norm")

    @tf.custom_gradient
    def op(x, residual, gamma, beta):
        output, keep = forward(x, residual, gamma, beta, seed, rate, epsilon, xla)

        def grad(d_output):
            return backward(d_output, x, residual, gamma, keep, rate, epsilon)
        return output, grad

    return op(x, residual, gamma, beta)


def masked_softmax_dropout(scores, bias, scale, rate, seed):
    """dropout(softmax(scores * scale + bias)) over the last axis, training mode, forward and
    backward each one XLA loop with the dropout mask drawn inside (outside `without_xla()`).

    The softmax is taken in float32; the backward pass keeps the float32 probabilities and the
    keep mask, as TensorFlow's softmax and dropout gradients do.

    Args:
        scores: [..., S]; bias: float32, broadcastable to scores (e.g. the [B, 1, 1, S]
            padding bias), or None. scale: multiplies the scores. rate: dropout rate in (0, 1).
        seed: [2] int32.

    Returns:
        [..., S] in the dtype of scores.
    """
    forward, backward, xla = _dropout_functions("softmax")

    @tf.custom_gradient
    def op(scores):
        output, probs, keep = forward(scores, bias, seed, scale, rate, xla)

        def grad(d_output):
            return backward(d_output, probs, keep, scale, rate)
        return output, grad

    return op(scores)
