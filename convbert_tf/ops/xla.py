"""The machinery of the fused ops: whether XLA compiles what is traced, the fused-op factory, the
random generator for draws compiled by XLA. TensorFlow only.

On CPU, TensorFlow runs an elementwise chain such as GELU's erf form (or its gradient) as one
kernel per operation, each reading and writing the whole tensor. Compiled by XLA, the chain
becomes one loop. `fused_op` pairs a forward with a hand-written backward (which recomputes
what it needs from the inputs, so nothing but the inputs is kept for the backward pass) and
compiles each. The numbers are those of the plain TensorFlow ops to float rounding
(tests/ops/test_fused.py).

The switches `without_xla` and `reference_math` live in ops/switches.py (no TensorFlow there).
"""

import functools

import tensorflow as tf
from tensorflow.python.ops import control_flow_util


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
