"""Initializers of the original release: truncated normal (re-drawn beyond 2 sigma) and glorot."""

import keras


def truncated_normal(stddev):
    """Truncated normal with the given stddev, values beyond two stddevs re-drawn (TF1 semantics)."""
    return keras.initializers.TruncatedNormal(stddev=stddev)
