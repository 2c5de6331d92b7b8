"""TaggingHead: per-token classification for sequence tagging (CoNLL-2000 chunking).

Legend: B batch, T length, D hidden, C tags.
"""

import keras

from convbert_tf import ops


@keras.saving.register_keras_serializable(package="convbert_tf")
class TaggingHead(keras.layers.Layer):
    """logits[t] = Dense_C(dropout(h_t)); the loss uses each word's first sub-token only.

    Call args:
      sequence_output: [B, T, D]. training: dropout switch.

    Returns:
      [B, T, C] logits (float32 under mixed precision).
    """

    def __init__(self, num_tags, dropout_rate=0.1, **kwargs):
        super().__init__(**kwargs)
        self.num_tags = num_tags
        self.dropout_rate = dropout_rate
        self.dropout = keras.layers.Dropout(dropout_rate, dtype=self.dtype_policy)
        self.dense = keras.layers.Dense(num_tags, dtype=self.dtype_policy, name="dense")

    def build(self, sequence_shape):
        self.dense.build(sequence_shape)

    def call(self, sequence_output, training=None):
        return ops.upcast_half(self.dense(ops.dropout(self.dropout, sequence_output, training)))  # [B, T, C]

    def get_config(self):
        config = super().get_config()
        config.update(num_tags=self.num_tags, dropout_rate=self.dropout_rate)
        return config
