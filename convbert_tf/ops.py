"""Weight-free tensor math shared by the layers: masks, the span-convolution window sum, the
XLA-fused GELU and LayerNorm, dropout fused with the LayerNorm or softmax next to it, and the
random generator for draws compiled by XLA.

Legend: B batch, T length, C channels, K kernel (window) size, N heads, H head size.
"""

import contextlib
import functools
import math
import threading

import tensorflow as tf
from tensorflow.python.ops import control_flow_util

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
    kernel_size = span_kernel.shape[-1]
    if kernel_size is None or kernel_size % 2 != 1:
        raise ValueError(f"shifted_window_sum needs a static odd kernel size, got {kernel_size}")
    if jit_compile and xla_fusion_allowed():
        return _shifted_window_sum_xla(values, span_kernel)
    return _shifted_window_sum(values, span_kernel)


# ----- XLA fusion of memory-bound work ---------------------------------------------------------
# On CPU, TensorFlow runs an elementwise chain such as GELU's erf form (or its gradient) as one
# kernel per operation, each reading and writing the whole tensor. Compiled by XLA, the chain
# becomes one loop. `fused_op` pairs a forward with a hand-written backward (which recomputes
# what it needs from the inputs, so nothing but the inputs is kept for the backward pass) and
# compiles each. The numbers are those of the plain TensorFlow ops to float rounding
# (tests/test_fused_ops.py).

_tracing = threading.local()


@contextlib.contextmanager
def without_xla():
    """Inside the block, the fused ops trace as plain TensorFlow ops (same numbers, no XLA).

    For SavedModels: TF Serving runs graphs without XLA unless started with
    --xla_cpu_compilation_enabled, and a GPU build may have no XLA compiler at all, so an
    exported graph must not hold functions that must be compiled by XLA. It applies to what
    is traced inside the block (a tf.function traced earlier keeps its graph).
    """
    previous = getattr(_tracing, "without_xla", False)
    _tracing.without_xla = True
    try:
        yield
    finally:
        _tracing.without_xla = previous


def xla_fusion_allowed():
    """False inside `without_xla()`."""
    return not getattr(_tracing, "without_xla", False)


def _compiled(fn):
    """fn as one XLA-compiled function."""
    return tf.function(fn, jit_compile=True, autograph=False)


def fused_op(forward, backward):
    """(plain, compiled) custom-gradient ops from forward(*inputs) and backward(d_out, *inputs).

    `backward` returns one gradient per input. `plain` runs both as TensorFlow ops; `compiled`
    runs each as one XLA-compiled function.
    """
    def with_gradient(forward_fn, backward_fn):
        @tf.custom_gradient
        def op(*inputs):
            def grad(d_output):
                return backward_fn(d_output, *inputs)
            return forward_fn(*inputs), grad
        return op

    return with_gradient(forward, backward), with_gradient(_compiled(forward), _compiled(backward))


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


def _depthwise_forward(x, kernel):
    """x [B, T, W], kernel [K, W] -> [B, T, W] (see the formulas above)."""
    kernel_size = kernel.shape[0]
    half = (kernel_size - 1) // 2
    length = tf.shape(x)[1]
    padded = tf.pad(upcast_half(x), [[0, 0], [half, half], [0, 0]])  # [B, T + K - 1, W]
    kernel32 = upcast_half(kernel)  # [K, W]
    output = padded[:, 0:length] * kernel32[0]  # [B, T, W]
    for i in range(1, kernel_size):
        output += padded[:, i:i + length] * kernel32[i]  # [B, T, W]
    return tf.cast(output, x.dtype)


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
    kernel_size = kernel.shape[0]
    if kernel_size is None or kernel_size % 2 != 1:
        raise ValueError(f"depthwise_conv1d needs a static odd kernel size, got {kernel_size}")
    return (_depthwise_xla if xla_fusion_allowed() else _depthwise_plain)(x, kernel)


@functools.lru_cache(maxsize=None)
def host_has_accelerator():
    """Whether this process sees a GPU or a TPU (asked once)."""
    return bool(tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("TPU"))

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
    """
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
    """
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
    plain, compiled = _layer_norm_ops_by_epsilon[epsilon]
    return (compiled if xla_fusion_allowed() else plain)(x, gamma, beta)



# ----- random draws under XLA, and dropout fused with its neighbours -----------------------------
# TensorFlow's dropout writes a tensor of uniform floats, compares, scales and selects, each a
# pass over memory, and the draw itself dominates. Here the keep mask is drawn inside the XLA
# loop that consumes it, with the counter-based ThreeFry generator: on CPU, XLA's ThreeFry costs
# about 2/3 of its Philox, and a small fraction of the "auto_select" that XLA compiles for a
# draw that names no algorithm (Keras's Dropout, `tf.random.stateless_uniform`'s default).
# TensorFlow's own kernels have no stateless ThreeFry, so draws outside XLA use Philox (which
# is what "auto_select" picks there, so those streams are unchanged). Same Bernoulli(1 - rate)
# mask either way; under XLA a different random stream from Keras's Dropout for the same seed
# (XLA's Philox stream differs from TensorFlow's anyway).

RNG_ALGORITHM = {True: "threefry", False: "philox"}  # compiled by XLA -> algorithm


def in_xla_compilation():
    """Whether what is traced here is compiled by XLA: inside `tf.function(jit_compile=True)`
    (or a function it calls), or a TPU replica's step."""
    return control_flow_util.GraphOrParentsInXlaContext(tf.compat.v1.get_default_graph())


def dropout_keep_mask(shape, seed, rate, xla=True):
    """[shape] bool, True with probability 1 - rate: a float32 uniform draw >= rate, as
    TensorFlow's dropout does. `seed` is a stateless [2] int32 seed; `xla` says whether the
    caller is compiled by XLA (it picks the generator, RNG_ALGORITHM)."""
    return tf.random.stateless_uniform(shape, seed, dtype=tf.float32, alg=RNG_ALGORITHM[xla]) >= rate


def dropout(layer, x, training):
    """`layer(x, training=training)` for a Keras Dropout layer, except that under XLA
    compilation the mask is drawn with ThreeFry (from the layer's seed generator, advanced
    as its call would) instead of XLA's slow default generator. [...] in, [...] out."""
    if not training or not layer.rate or layer.noise_shape is not None or not in_xla_compilation():
        return layer(x, training=training)
    keep = dropout_keep_mask(tf.shape(x), dropout_seed(layer), layer.rate, xla=True)
    return tf.where(keep, x * tf.cast(1.0 / (1.0 - layer.rate), x.dtype), tf.zeros_like(x))


def dropout_seed(dropout_layer):
    """The next [2] int32 seed of a Keras Dropout layer's seed generator (advancing it as the
    layer's own call would)."""
    seed = dropout_layer.seed_generator.next()
    if seed.dtype != tf.int32:
        seed = tf.cast(tf.math.floormod(seed, tf.int32.max - 1), tf.int32)  # Keras's own cast
    return seed


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


def scaled_softmax(scores, bias, scale):
    """softmax(scores * scale + bias) over the last axis, taken in >= float32.

    bias: broadcastable to scores (e.g. the [B, 1, 1, S] padding bias), or None.
    """
    logits = upcast_half(scores) * scale
    if bias is not None:
        logits += tf.cast(bias, logits.dtype)
    return tf.nn.softmax(logits, axis=-1)


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
    name: (forward, backward, _compiled(forward), _compiled(backward))
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
