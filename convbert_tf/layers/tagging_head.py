"""TaggingHead: per-token classification for sequence tagging (CoNLL-2000 chunking).

Legend: B batch, T length, D hidden, C tags.
"""

import keras

from convbert_tf import ops


@keras.saving.register_keras_serializable(package="convbert_tf")
class TaggingHead(keras.layers.Layer):
    """logits[t] = Dense_C(h_t); the loss uses each word's first sub-token only.

    As the original's tagging task (scope `task_specific/<task>/dense`): one dense layer with
    glorot-uniform initialization on the encoder's output, and no dropout of its own (the
    encoder's dropout still applies in training).

    Args:
      num_tags: C.

    Call args:
      sequence_output: [B, T, D].

    Returns:
      [B, T, C] logits (float32 under mixed precision).
    """

    def __init__(self, num_tags, **kwargs):
        super().__init__(**kwargs)
        self.num_tags = num_tags
        self.dense = keras.layers.Dense(num_tags, dtype=self.dtype_policy, name="dense")

    def build(self, sequence_shape):
        self.dense.build(sequence_shape)

    def call(self, sequence_output, training=None):
        return ops.upcast_half(self.dense(sequence_output))  # [B, T, C]

    def get_config(self):
        config = super().get_config()
        config.update(num_tags=self.num_tags)
        return config
