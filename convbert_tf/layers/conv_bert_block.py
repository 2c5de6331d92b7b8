"""ConvBertBlock: one ConvBERT encoder layer (mixed attention + grouped-linear feed-forward).

Legend: B batch, T length, D hidden, I intermediate width, G groups.
"""

import keras

from convbert_tf import ops
from convbert_tf.config import DEFAULT_CONV_IMPLEMENTATION
from convbert_tf.layers.grouped_dense import GroupedDense, grouped_feed_forward
from convbert_tf.layers.layer_norm import LayerNorm
from convbert_tf.layers.mixed_attention import MixedAttention
from convbert_tf.ops import LAYER_NORM_EPSILON


@keras.saving.register_keras_serializable(package="convbert_tf")
class ConvBertBlock(keras.layers.Layer):
    """One encoder layer, post-LayerNorm as in BERT and the original release (the original's
    `model/modeling.py`, `transformer_model`):

      attended = LayerNorm(x + dropout(MixedAttention(x)))                       [B, T, D]
      output   = LayerNorm(attended + dropout(GL_2(act(GL_1(attended)))))        [B, T, D]

    GL_1: D -> I and GL_2: I -> D are grouped linear layers with G groups (plain dense when
    G = 1). LayerNorm eps is 1e-12; there is no dropout inside the feed-forward.

    Args:
      hidden_size, num_attention_heads, intermediate_size, head_ratio, conv_kernel_size,
      conv_type, linear_groups, hidden_act, initializer_range: as in ConvBertConfig.
      hidden_dropout: dropout after the attention output and the feed-forward output.
      attention_dropout: dropout on the attention probabilities.
      conv_mask_padding: keep padded positions out of the convolution heads.
      conv_implementation: formulation of the span convolution (same numbers).

    Call args:
      hidden: [B, T, D]. padding_mask: [B, T], 1 for real tokens. training: dropout switch.

    Returns:
      [B, T, D].
    """

    def __init__(self, hidden_size, num_attention_heads, intermediate_size, head_ratio=2,
                 conv_kernel_size=9, conv_type="sdconv", linear_groups=1, hidden_act="gelu",
                 hidden_dropout=0.0, attention_dropout=0.0, initializer_range=0.02,
                 conv_mask_padding=False, conv_implementation=DEFAULT_CONV_IMPLEMENTATION, **kwargs):
        super().__init__(**kwargs)
        self.hidden_size = hidden_size
        self.num_attention_heads = num_attention_heads
        self.intermediate_size = intermediate_size
        self.head_ratio = head_ratio
        self.conv_kernel_size = conv_kernel_size
        self.conv_type = conv_type
        self.linear_groups = linear_groups
        self.hidden_act = hidden_act
        self.hidden_dropout = hidden_dropout
        self.attention_dropout = attention_dropout
        self.initializer_range = initializer_range
        self.conv_mask_padding = conv_mask_padding
        self.conv_implementation = conv_implementation

        policy = self.dtype_policy
        self.attention = MixedAttention(
            hidden_size, num_attention_heads, head_ratio=head_ratio, conv_kernel_size=conv_kernel_size,
            conv_type=conv_type, attention_dropout=attention_dropout,
            initializer_range=initializer_range, conv_mask_padding=conv_mask_padding,
            conv_implementation=conv_implementation, dtype=policy, name="attention")
        self.attention_dropout_layer = keras.layers.Dropout(hidden_dropout, dtype=policy)
        self.attention_layer_norm = LayerNorm(
            epsilon=LAYER_NORM_EPSILON, dtype=policy, name="attention_LayerNorm")
        self.intermediate = GroupedDense(intermediate_size, linear_groups, activation=hidden_act,
                                         initializer_range=initializer_range, dtype=policy,
                                         name="intermediate")
        self.output_dense = GroupedDense(hidden_size, linear_groups, initializer_range=initializer_range,
                                         dtype=policy, name="output_dense")
        self.output_dropout = keras.layers.Dropout(hidden_dropout, dtype=policy)
        self.output_layer_norm = LayerNorm(
            epsilon=LAYER_NORM_EPSILON, dtype=policy, name="output_LayerNorm")

    def build(self, hidden_shape, padding_mask_shape=None):
        self.attention.build(hidden_shape)
        self.attention_layer_norm.build(hidden_shape)
        self.intermediate.build(hidden_shape)
        self.output_dense.build(tuple(hidden_shape[:-1]) + (self.intermediate_size,))
        self.output_layer_norm.build(hidden_shape)

    def call(self, hidden, padding_mask=None, training=None):
        attention_output = self.attention(hidden, padding_mask, training=training)  # [B, T, D]
        attended = dropout_residual_layer_norm(self.attention_dropout_layer, self.attention_layer_norm,
                                               attention_output, hidden, training)  # [B, T, D]
        ffn_output = grouped_feed_forward(attended, self.intermediate, self.output_dense)  # [B, T, D] via [B, T, I]
        return dropout_residual_layer_norm(self.output_dropout, self.output_layer_norm, ffn_output, attended,
                                           training)

    def compute_output_shape(self, hidden_shape, padding_mask_shape=None):
        return tuple(hidden_shape)

    def get_config(self):
        config = super().get_config()
        config.update(hidden_size=self.hidden_size, num_attention_heads=self.num_attention_heads,
                      intermediate_size=self.intermediate_size, head_ratio=self.head_ratio,
                      conv_kernel_size=self.conv_kernel_size, conv_type=self.conv_type,
                      linear_groups=self.linear_groups, hidden_act=self.hidden_act,
                      hidden_dropout=self.hidden_dropout, attention_dropout=self.attention_dropout,
                      initializer_range=self.initializer_range,
                      conv_mask_padding=self.conv_mask_padding,
                      conv_implementation=self.conv_implementation)
        return config


def dropout_residual_layer_norm(dropout, norm, x, residual, training):
    """norm(residual + dropout(x)) for a built Dropout and LayerNorm, [..., W].

    In training with dropout on (and the norm's fused path applicable: tensorflow only), one fused op each way:
    `ops.dropout_add_layer_norm`, with the mask drawn inside the loop and the sum taken in
    float32. Otherwise, and under `ops.reference_math()`, the layers are simply called (the
    dropout through `ops.dropout`).
    """
    if training and dropout.rate > 0 and dropout.noise_shape is None and norm.fuses(len(x.shape)):
        output = ops.dropout_add_layer_norm(
            x, residual, ops.read(norm.gamma), ops.read(norm.beta), norm.epsilon,
            dropout.rate, ops.dropout_seed(dropout))
        return keras.ops.cast(output, norm.compute_dtype)
    return norm(residual + ops.dropout(dropout, x, training))
