"""Attention masking and the masked softmax, in keras.ops (the reference math, any backend).

Legend: B batch, T query length, S key length.
"""

import keras

from convbert_tf.ops.tensors import upcast_half

# Additive score for padded keys, as in the original release (exp(-10000) underflows to 0).
MASKED_SCORE = -10000.0


def attention_bias_from_padding_mask(padding_mask, dtype="float32"):
    """[B, S] padding mask (1 = keep) -> [B, 1, 1, S] additive bias: 0 to keep, -10000 to drop.

    Only keys are masked; padded queries still attend, as in the original.
    """
    padding_mask = keras.ops.cast(padding_mask, dtype)  # [B, S]
    return ((1.0 - padding_mask) * MASKED_SCORE)[:, None, None, :]  # [B, 1, 1, S]


def scaled_softmax(scores, bias, scale):
    """softmax(scores * scale + bias) over the last axis, taken in >= float32.

    bias: broadcastable to scores (e.g. the [B, 1, 1, S] padding bias), or None.
    """
    logits = upcast_half(scores) * scale
    if bias is not None:
        logits = logits + keras.ops.cast(bias, logits.dtype)
    return keras.ops.softmax(logits, axis=-1)
