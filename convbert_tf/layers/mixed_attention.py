"""MixedAttention: ConvBERT's bottlenecked mix of self-attention and span convolution heads.

Legend: B batch, T query length, S key length (= T), D hidden, N heads per branch,
H head size, C = N * H bottleneck width, K kernel size.
"""

import math

import keras

from convbert_tf import ops
from convbert_tf.config import DEFAULT_CONV_IMPLEMENTATION, head_arithmetic
from convbert_tf.layers.initializers import truncated_normal
from convbert_tf.layers.span_dynamic_conv import SpanDynamicConv


@keras.saving.register_keras_serializable(package="convbert_tf")
class MixedAttention(keras.layers.Layer):
    """Mixed attention with the bottleneck (ConvBERT paper, Sections 3.1-3.3; the
    original's `model/modeling.py`).

    The config's `num_attention_heads` heads of size H = D / num_attention_heads are reduced
    by `head_ratio` to N = int(num_attention_heads / head_ratio) self-attention heads, and N
    span-convolution heads of the same size are added (conv_type 'sdconv'). If N would be 0,
    the original keeps one head of each kind (only the small generator hits this).

      query, key, value = Dense(hidden)                         [B, T, C] each
      attention_probs   = softmax(query key^T / sqrt(H) + bias) [B, N, T, S]
      attention_heads   = attention_probs value                 [B, T, C]
      conv_heads        = SpanDynamicConv(hidden, query)        [B, T, C]
      output            = Dense(concat(attention_heads, conv_heads))  [B, T, D]

    Width invariant: the concatenation is 2 * C wide (C for 'noconv'); only for head_ratio 2 is
    that D. The output dense maps it back to D for any head_ratio, as in the original.

    Masking: keys at padded positions get -10000 before the softmax; padded queries still
    compute outputs. The conv heads ignore the mask unless `conv_mask_padding` (see
    SpanDynamicConv). Dropout applies to the attention probabilities only.

    Args:
      hidden_size: D.
      num_attention_heads: the config's head count (before the head_ratio reduction).
      head_ratio: gamma.
      conv_kernel_size: K.
      conv_type: 'sdconv' or 'noconv'.
      attention_dropout: dropout rate on the attention probabilities.
      initializer_range: stddev of the truncated-normal kernel initializers.
      conv_mask_padding: keep padded positions out of the convolution heads.
      conv_implementation: formulation of the span convolution (same numbers).

    Call args:
      hidden: [B, T, D]. padding_mask: [B, T], 1 for real tokens. training: dropout switch.

    Returns:
      [B, T, D], before the residual connection (the encoder block adds dropout, residual, LN).
    """

    def __init__(self, hidden_size, num_attention_heads, head_ratio=2, conv_kernel_size=9,
                 conv_type="sdconv", attention_dropout=0.0, initializer_range=0.02,
                 conv_mask_padding=False, conv_implementation=DEFAULT_CONV_IMPLEMENTATION, **kwargs):
        super().__init__(**kwargs)
        if hidden_size % num_attention_heads:
            raise ValueError(f"MixedAttention: hidden_size ({hidden_size}) must be divisible by "
                             f"num_attention_heads ({num_attention_heads})")
        if conv_type not in ("sdconv", "noconv"):
            raise ValueError(f"MixedAttention: conv_type must be 'sdconv' or 'noconv', got {conv_type!r}")
        self.hidden_size = hidden_size
        self.num_attention_heads = num_attention_heads
        self.head_ratio = head_ratio
        self.conv_kernel_size = conv_kernel_size
        self.conv_type = conv_type
        self.attention_dropout = attention_dropout
        self.initializer_range = initializer_range
        self.conv_mask_padding = conv_mask_padding
        self.conv_implementation = conv_implementation

        heads = head_arithmetic(num_attention_heads, hidden_size, head_ratio)
        self.num_heads, self.head_size = heads.num_heads, heads.head_size
        channels = heads.bottleneck_size
        self.mixed_width = 2 * channels if conv_type == "sdconv" else channels
        assert channels == self.num_heads * self.head_size, (channels, self.num_heads, self.head_size)

        def dense(units, name):
            return keras.layers.Dense(units, kernel_initializer=truncated_normal(initializer_range),
                                      dtype=self.dtype_policy, name=name)

        self.query_dense = dense(channels, "query")
        self.key_dense = dense(channels, "key")
        self.value_dense = dense(channels, "value")
        self.span_conv = None
        if conv_type == "sdconv":
            self.span_conv = SpanDynamicConv(
                self.num_heads, self.head_size, conv_kernel_size, initializer_range=initializer_range,
                mask_padding=conv_mask_padding, implementation=conv_implementation,
                dtype=self.dtype_policy, name="span_conv")
        self.probs_dropout = keras.layers.Dropout(attention_dropout, dtype=self.dtype_policy)
        self.output_dense = dense(hidden_size, "output_dense")

    def build(self, hidden_shape, padding_mask_shape=None):
        if hidden_shape[-1] != self.hidden_size:
            raise ValueError(f"MixedAttention: input width {hidden_shape[-1]} != hidden_size {self.hidden_size}")
        channels = self.num_heads * self.head_size
        for layer in (self.query_dense, self.key_dense, self.value_dense):
            layer.build(hidden_shape)
        if self.span_conv is not None:
            self.span_conv.build(hidden_shape, tuple(hidden_shape[:-1]) + (channels,))
        self.output_dense.build(tuple(hidden_shape[:-1]) + (self.mixed_width,))

    def call(self, hidden, padding_mask=None, training=None):
        batch, length = ops.shape_list(hidden)[:2]
        heads_shape = [batch, length, self.num_heads, self.head_size]
        query = self.query_dense(hidden)  # [B, T, C]
        key = self.key_dense(hidden)  # [B, S, C]
        value = self.value_dense(hidden)  # [B, S, C]

        scores = ops.einsum("BTNH,BSNH->BNTS", keras.ops.reshape(query, heads_shape),
                            keras.ops.reshape(key, heads_shape))  # [B, N, T, S]
        attention_probs = attention_probs_with_dropout(self.probs_dropout, scores, padding_mask,
                                                       1.0 / math.sqrt(self.head_size), training)  # [B, N, T, S]
        attention_heads = ops.einsum("BNTS,BSNH->BTNH", attention_probs,
                                     keras.ops.reshape(value, heads_shape))  # [B, T, N, H]
        mixed = keras.ops.reshape(attention_heads, [batch, length, self.num_heads * self.head_size])  # [B, T, C]
        if self.span_conv is not None:
            conv_heads = self.span_conv(hidden, query, padding_mask)  # [B, T, C]
            mixed = keras.ops.concatenate([mixed, conv_heads], axis=-1)  # [B, T, 2C]
        return self.output_dense(mixed)  # [B, T, D]

    def compute_output_shape(self, hidden_shape, padding_mask_shape=None):
        return tuple(hidden_shape)

    def get_config(self):
        config = super().get_config()
        config.update(hidden_size=self.hidden_size, num_attention_heads=self.num_attention_heads,
                      head_ratio=self.head_ratio, conv_kernel_size=self.conv_kernel_size,
                      conv_type=self.conv_type, attention_dropout=self.attention_dropout,
                      initializer_range=self.initializer_range,
                      conv_mask_padding=self.conv_mask_padding,
                      conv_implementation=self.conv_implementation)
        return config


def attention_probs_with_dropout(dropout, scores, padding_mask, scale, training):
    """dropout(softmax(scores * scale + padding bias)), the softmax in float32, [B, N, T, S].

    On tensorflow in training with dropout on, one fused op each way (`ops.masked_softmax_dropout`, the mask
    drawn inside the loop); otherwise, and under `ops.reference_math()`, `attention_probs` and
    the Keras Dropout layer (through `ops.dropout`).
    """
    if (ops.TENSORFLOW and training and dropout.rate > 0 and dropout.noise_shape is None
            and not ops.reference_math_active("elementwise")):
        probs = ops.masked_softmax_dropout(scores, padding_bias(padding_mask), scale, dropout.rate,
                                           ops.dropout_seed(dropout))
        return keras.ops.cast(probs, dropout.compute_dtype)
    return ops.dropout(dropout, attention_probs(scores, padding_mask, scale, dropout.compute_dtype), training)


def attention_probs(scores, padding_mask, scale, dtype):
    """softmax(scores * scale + padding bias) over the keys, taken in >= float32, cast to dtype."""
    return keras.ops.cast(ops.scaled_softmax(scores, padding_bias(padding_mask), scale), dtype)


def padding_bias(padding_mask):
    """The [B, 1, 1, S] float32 additive bias of a [B, S] padding mask, or None without one."""
    return None if padding_mask is None else ops.attention_bias_from_padding_mask(padding_mask, "float32")
