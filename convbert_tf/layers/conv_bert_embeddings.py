"""ConvBertEmbeddings: word + position + segment embeddings, LayerNorm and dropout at width E.

Legend: B batch, T length, E embedding width, V vocab size.
"""

import keras

from convbert_tf import ops
from convbert_tf.layers.initializers import truncated_normal
from convbert_tf.layers.layer_norm import LayerNorm
from convbert_tf.ops import LAYER_NORM_EPSILON


@keras.saving.register_keras_serializable(package="convbert_tf")
class ConvBertEmbeddings(keras.layers.Layer):
    """embeddings = dropout(LayerNorm(word[input_ids] + segment[segment_ids] + position[0..T-1])).

    All three tables are [rows, E] and the sum, LayerNorm (eps 1e-12) and dropout happen at
    width E (the original's `model/modeling.py`, `embedding_postprocessor`). The E -> D projection, when E != D, is not part of this layer:
    the original keeps it in its own scope (`<model>/embeddings_project`) because the ELECTRA
    generator shares these tables with the discriminator but has a projection of its own.
    `ConvBertEncoder` owns the projection.

    Args:
      vocab_size: V.
      embedding_size: E.
      max_position_embeddings: rows of the position table; T may not exceed it.
      type_vocab_size: rows of the segment table.
      initializer_range: stddev of the truncated-normal table initializer.
      dropout_rate: dropout after the LayerNorm.

    Call args:
      input_ids: [B, T] int. segment_ids: [B, T] int. training: dropout switch.

    Returns:
      [B, T, E].
    """

    def __init__(self, vocab_size, embedding_size, max_position_embeddings=512, type_vocab_size=2,
                 initializer_range=0.02, dropout_rate=0.0, **kwargs):
        super().__init__(**kwargs)
        self.vocab_size = vocab_size
        self.embedding_size = embedding_size
        self.max_position_embeddings = max_position_embeddings
        self.type_vocab_size = type_vocab_size
        self.initializer_range = initializer_range
        self.dropout_rate = dropout_rate
        self.layer_norm = LayerNorm(
            epsilon=LAYER_NORM_EPSILON, dtype=self.dtype_policy, name="LayerNorm")
        self.dropout = keras.layers.Dropout(dropout_rate, dtype=self.dtype_policy)

    def build(self, input_ids_shape=None, segment_ids_shape=None):
        init = truncated_normal(self.initializer_range)
        self.word_embeddings = self.add_weight(
            name="word_embeddings", shape=(self.vocab_size, self.embedding_size), initializer=init)
        self.token_type_embeddings = self.add_weight(
            name="token_type_embeddings", shape=(self.type_vocab_size, self.embedding_size), initializer=init)
        self.position_embeddings = self.add_weight(
            name="position_embeddings", shape=(self.max_position_embeddings, self.embedding_size),
            initializer=init)
        self.layer_norm.build((None, None, self.embedding_size))

    def call(self, input_ids, segment_ids, training=None):
        length = input_ids.shape[1]
        if length is not None and length > self.max_position_embeddings:
            raise ValueError(f"sequence length {length} exceeds max_position_embeddings "
                             f"({self.max_position_embeddings}); truncate the inputs")
        dynamic_length = ops.shape_list(input_ids)[1]
        words = ops.take(self.word_embeddings, input_ids)  # [B, T, E]
        segments = ops.take(self.token_type_embeddings, segment_ids)  # [B, T, E]
        positions = self.position_embeddings[:dynamic_length if length is None else length]  # [T, E]
        embeddings = keras.ops.cast(words + segments + positions[None], self.compute_dtype)  # [B, T, E]
        embeddings = self.layer_norm(embeddings)
        return ops.dropout(self.dropout, embeddings, training)

    def compute_output_shape(self, input_ids_shape, segment_ids_shape=None):
        return tuple(input_ids_shape) + (self.embedding_size,)

    def get_config(self):
        config = super().get_config()
        config.update(vocab_size=self.vocab_size, embedding_size=self.embedding_size,
                      max_position_embeddings=self.max_position_embeddings,
                      type_vocab_size=self.type_vocab_size, initializer_range=self.initializer_range,
                      dropout_rate=self.dropout_rate)
        return config
