"""The machinery of the fused ops: when XLA may compile them, the fused-op factory, the random
generator for draws compiled by XLA, and the switch back to the plain reference math.

On CPU, TensorFlow runs an elementwise chain such as GELU's erf form (or its gradient) as one
kernel per operation, each reading and writing the whole tensor. Compiled by XLA, the chain
becomes one loop. `fused_op` pairs a forward with a hand-written backward (which recomputes
what it needs from the inputs, so nothing but the inputs is kept for the backward pass) and
compiles each. The numbers are those of the plain TensorFlow ops to float rounding
(tests/ops/test_fused.py).

Both switches here (`without_xla`, `reference_math`) act on what is traced inside them: they
are thread-local, and a tf.function traced earlier keeps its graph.
"""

import contextlib
import functools
import threading

import tensorflow as tf
from tensorflow.python.ops import control_flow_util

_tracing = threading.local()

# What `reference_math` can turn back to the plain math.
REFERENCE_PARTS = ("elementwise", "grouped_ffn")


@contextlib.contextmanager
def without_xla():
    """Inside the block, the fused ops trace as plain TensorFlow ops (same numbers, no XLA).

    For SavedModels: TF Serving runs graphs without XLA unless started with
    --xla_cpu_compilation_enabled, and a GPU build may have no XLA compiler at all, so an
    exported graph must not hold functions that must be compiled by XLA.
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


@contextlib.contextmanager
def reference_math(elementwise=True, grouped_ffn=True):
    """Inside the block, the layers trace with the plain math the fused paths replace.

    elementwise: TensorFlow's erf GELU (`tf.nn.gelu(approximate=False)`, after a separate bias
        add), Keras's LayerNormalization, and Keras's Dropout layers called on their own (with
        TensorFlow's softmax and residual add) instead of the fused GELU, bias-GELU, LayerNorm,
        softmax + dropout and dropout + add + LayerNorm. Same numbers to float rounding; the
        dropout masks come from Keras's own stream.
    grouped_ffn: the grouped feed-forward as two GroupedDense calls instead of one batched path.

    The span convolution keeps its `conv_implementation` ('unfold' is its reference).
    """
    previous = getattr(_tracing, "reference", frozenset())
    _tracing.reference = previous | {part for part, on in
                                     (("elementwise", elementwise), ("grouped_ffn", grouped_ffn)) if on}
    try:
        yield
    finally:
        _tracing.reference = previous


def reference_math_active(part):
    """Whether `part` (one of REFERENCE_PARTS) traces as the plain math here (`reference_math`)."""
    if part not in REFERENCE_PARTS:
        raise ValueError(f"unknown part {part!r}; use one of {REFERENCE_PARTS}")
    return part in getattr(_tracing, "reference", frozenset())


def compiled(fn):
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

    return with_gradient(forward, backward), with_gradient(compiled(forward), compiled(backward))


def in_xla_compilation():
    """Whether what is traced here is compiled by XLA: inside `tf.function(jit_compile=True)`
    (or a function it calls), or a TPU replica's step."""
    return control_flow_util.GraphOrParentsInXlaContext(tf.compat.v1.get_default_graph())


@functools.lru_cache(maxsize=None)
def host_has_accelerator():
    """Whether this process sees a GPU or a TPU (asked once)."""
    return bool(tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("TPU"))


# ----- random draws under XLA ------------------------------------------------------------------
# TensorFlow's dropout writes a tensor of uniform floats, compares, scales and selects, each a
# pass over memory, and the draw itself dominates. The fused dropouts draw the keep mask inside
# the XLA loop that consumes it, with the counter-based ThreeFry generator: on CPU, XLA's
# ThreeFry costs about 2/3 of its Philox, and a small fraction of the "auto_select" that XLA
# compiles for a draw that names no algorithm (Keras's Dropout, `tf.random.stateless_uniform`'s
# default). TensorFlow's own kernels have no stateless ThreeFry, so draws outside XLA use Philox
# (which is what "auto_select" picks there, so those streams are unchanged). Same
# Bernoulli(1 - rate) mask either way; under XLA a different random stream from Keras's Dropout
# for the same seed (XLA's Philox stream differs from TensorFlow's anyway).

RNG_ALGORITHM = {True: "threefry", False: "philox"}  # compiled by XLA -> algorithm


def dropout_keep_mask(shape, seed, rate, xla=True):
    """[shape] bool, True with probability 1 - rate: a float32 uniform draw >= rate, as
    TensorFlow's dropout does. `seed` is a stateless [2] int32 seed; `xla` says whether the
    caller is compiled by XLA (it picks the generator, RNG_ALGORITHM)."""
    return tf.random.stateless_uniform(shape, seed, dtype=tf.float32, alg=RNG_ALGORITHM[xla]) >= rate


def dropout_seed(dropout_layer):
    """The next [2] int32 seed of a Keras Dropout layer's seed generator (advancing it as the
    layer's own call would)."""
    seed = dropout_layer.seed_generator.next()
    if seed.dtype != tf.int32:
        seed = tf.cast(tf.math.floormod(seed, tf.int32.max - 1), tf.int32)  # Keras's own cast
    return seed
