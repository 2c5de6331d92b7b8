"""The plain math of the elementwise ops in keras.ops, used on the jax and torch backends (where
jax.jit / torch.compile do the fusing), and the primitives whose keras.ops lowering on
tensorflow is not the TensorFlow op the layers have always run there.

Legend: W the activated width.
"""

import math

import keras

from convbert_tf.ops.tensors import upcast_half

TENSORFLOW = keras.backend.backend() == "tensorflow"

_SQRT_HALF = 1.0 / math.sqrt(2.0)

if TENSORFLOW:
    # keras.ops.einsum rewrites some subscripts as transposes and matmuls on tensorflow, and
    # keras.ops.take adds an index fix-up: the layers keep TensorFlow's own ops there.
    import tensorflow as tf

    einsum, matmul, take = tf.einsum, tf.matmul, tf.gather

    def take_rows(params, indices):
        """params [B, T, ...] at indices [B] or [B, K] along T, per batch row: [B, ...] or [B, K, ...]."""
        return tf.gather(params, indices, batch_dims=1)

    read = tf.convert_to_tensor  # a variable's value as a tensor (custom gradients take no variables)
else:
    einsum, matmul = keras.ops.einsum, keras.ops.matmul

    def take(params, indices):
        """Rows `indices` of `params` (axis 0), as tf.gather."""
        return keras.ops.take(params, indices, axis=0)

    def take_rows(params, indices):
        """params [B, T, ...] at indices [B] or [B, K] along T, per batch row: [B, ...] or [B, K, ...]."""
        index = keras.ops.reshape(indices, (-1, 1 if len(indices.shape) == 1 else indices.shape[1])
                                  + (1,) * (len(params.shape) - 2))
        rows = keras.ops.take_along_axis(params, index, axis=1)  # [B, 1 or K, ...]
        return rows[:, 0] if len(indices.shape) == 1 else rows

    read = keras.ops.convert_to_tensor


def gelu(x):
    """Exact GELU, x * 0.5 * (1 + erf(x / sqrt(2))), in the original release's form; half
    precision computed in float32 and rounded once."""
    x32 = upcast_half(x)
    return keras.ops.cast(x32 * (0.5 * (1.0 + keras.ops.erf(x32 * _SQRT_HALF))), x.dtype)


def bias_gelu(x, bias):
    """gelu(x + bias); bias [W] or x's rank with size-1 axes where it repeats."""
    return gelu(x + bias)


def dropout(layer, x, training):
    """`layer(x, training=training)` for a Keras Dropout layer."""
    return layer(x, training=training)


def in_xla_compilation():
    """False: the tensorflow fused paths that ask this are never taken on this backend."""
    return False
