"""Activations by the names the original config uses; GELU is the exact (erf) form."""

import keras

from convbert_tf import ops

# Exact GELU, x * 0.5 * (1 + erf(x / sqrt(2))), as the original release computes it; XLA-fused.
gelu = ops.gelu

_ACTIVATIONS = {"gelu": gelu, "relu": keras.ops.relu, "tanh": keras.ops.tanh, "linear": None}


def get_activation(name):
    """Returns the activation function for `name` ('gelu', 'relu', 'tanh' or 'linear' -> None)."""
    if name not in _ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; use one of {sorted(_ACTIVATIONS)}")
    return _ACTIVATIONS[name]
