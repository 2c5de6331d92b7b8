"""Small tensor helpers every layer uses: static-or-dynamic shapes, the half-precision upcast,
and the original release's LayerNorm epsilon."""

import tensorflow as tf

# LayerNorm epsilon hard-coded by the original release (tf.contrib.layers.layer_norm).
LAYER_NORM_EPSILON = 1e-12


def shape_list(tensor):
    """The tensor's dimensions as a list: Python ints where static, scalar tensors where not."""
    dynamic = tf.shape(tensor)
    return [dim if dim is not None else dynamic[i] for i, dim in enumerate(tensor.shape.as_list())]


def upcast_half(tensor):
    """Half-precision (float16 / bfloat16) tensors cast to float32; others unchanged."""
    if tensor.dtype in (tf.float16, tf.bfloat16):
        return tf.cast(tensor, tf.float32)
    return tensor
