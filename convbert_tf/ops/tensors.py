"""Small tensor helpers every layer uses, in keras.ops (any backend): static-or-dynamic shapes,
the half-precision upcast, and the original release's LayerNorm epsilon."""

import keras

# LayerNorm epsilon hard-coded by the original release (tf.contrib.layers.layer_norm).
LAYER_NORM_EPSILON = 1e-12

_HALF = ("float16", "bfloat16")


def shape_list(tensor):
    """The tensor's dimensions as a list: Python ints where static, scalar tensors where not
    (dynamic dimensions exist only on the tensorflow backend)."""
    return list(keras.ops.shape(tensor))


def upcast_half(tensor):
    """Half-precision (float16 / bfloat16) tensors cast to float32; others unchanged."""
    if keras.backend.standardize_dtype(tensor.dtype) in _HALF:
        return keras.ops.cast(tensor, "float32")
    return tensor
