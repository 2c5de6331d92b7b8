"""ReplacedTokenDetectionHead: the ELECTRA discriminator's per-token real/replaced logit.

Legend: B batch, T length, D hidden.
"""

import keras

from convbert_tf import ops
from convbert_tf.layers.activations import get_activation
from convbert_tf.layers.initializers import truncated_normal


@keras.saving.register_keras_serializable(package="convbert_tf")
class ReplacedTokenDetectionHead(keras.layers.Layer):
    """logit_t = act(h_t W1 + b1) W2 + b2 (ELECTRA's `run_pretraining.py`, `_get_discriminator_output`;
    scope `discriminator_predictions`).

    `dense` [D, D] uses a truncated-normal initializer and `dense_1` [D, 1] glorot-uniform,
    as in the original.

    Call args:
      hidden: [B, T, D].

    Returns:
      [B, T] logits (float32 under mixed precision); positive means "replaced".
    """

    def __init__(self, hidden_size, activation="gelu", initializer_range=0.02, **kwargs):
        super().__init__(**kwargs)
        self.hidden_size = hidden_size
        self.activation = activation
        self.initializer_range = initializer_range
        self.dense = keras.layers.Dense(hidden_size, activation=get_activation(activation),
                                        kernel_initializer=truncated_normal(initializer_range),
                                        dtype=self.dtype_policy, name="dense")
        self.dense_1 = keras.layers.Dense(1, dtype=self.dtype_policy, name="dense_1")

    def build(self, hidden_shape):
        self.dense.build(hidden_shape)
        self.dense_1.build(tuple(hidden_shape[:-1]) + (self.hidden_size,))

    def call(self, hidden):
        logits = self.dense_1(self.dense(hidden))  # [B, T, 1]
        return ops.upcast_half(keras.ops.squeeze(logits, -1))  # [B, T]

    def compute_output_shape(self, hidden_shape):
        return tuple(hidden_shape[:-1])

    def get_config(self):
        config = super().get_config()
        config.update(hidden_size=self.hidden_size, activation=self.activation,
                      initializer_range=self.initializer_range)
        return config
