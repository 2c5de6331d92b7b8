"""Attention masking and the masked softmax, in plain TensorFlow ops (the reference math).

Legend: B batch, T query length, S key length.
"""

import tensorflow as tf

from convbert_tf.ops.tensors import upcast_half

# Additive score for padded keys, as in the original release (exp(-10000) underflows to 0).
MASKED_SCORE = -10000.0


def attention_bias_from_padding_mask(padding_mask, dtype=tf.float32):
    """[B, S] padding mask (1 = keep) -> [B, 1, 1, S] additive bias: 0 to keep, -10000 to drop.

    Only keys are masked; padded queries still attend, as in the original.
    """
    padding_mask = tf.cast(padding_mask, dtype)  # [B, S]
    return ((1.0 - padding_mask) * MASKED_SCORE)[:, None, None, :]  # [B, 1, 1, S]


def scaled_softmax(scores, bias, scale):
    """softmax(scores * scale + bias) over the last axis, taken in >= float32.

    bias: broadcastable to scores (e.g. the [B, 1, 1, S] padding bias), or None.
    """
    logits = upcast_half(scores) * scale
    if bias is not None:
        logits += tf.cast(bias, logits.dtype)
    return tf.nn.softmax(logits, axis=-1)
