"""The switches of the fused ops, in plain Python (no TensorFlow): `without_xla()` and
`reference_math()`. Both act on what is traced inside them: they are thread-local, and a
tf.function traced earlier keeps its graph. On the jax and torch backends the layers always run
the plain math, so these only matter on tensorflow.
"""

import contextlib
import threading

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
