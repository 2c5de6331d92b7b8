"""MaskedLMHead: the ELECTRA generator's MLM head, tied to the shared word embeddings.

Legend: B batch, P masked positions, D generator hidden, E embedding width, V vocab size.
"""

import keras

from convbert_tf import ops
from convbert_tf.layers.activations import get_activation
from convbert_tf.layers.initializers import truncated_normal
from convbert_tf.layers.layer_norm import LayerNorm
from convbert_tf.ops import LAYER_NORM_EPSILON


@keras.saving.register_keras_serializable(package="convbert_tf")
class MaskedLMHead(keras.layers.Layer):
    """logits = LayerNorm(act(hidden W + b)) word_embeddings^T + output_bias (ELECTRA's
    `run_pretraining.py`, `_get_masked_lm_output`).

    The output matrix is the transposed word-embedding table, shared with the encoders; the
    head owns only `dense` [D, E], `LayerNorm` and `output_bias` [V] (original scope
    `generator_predictions`).

    Args:
      embedding_layer: the ConvBertEmbeddings whose `word_embeddings` [V, E] are tied.
      activation: the encoder's hidden_act.
      initializer_range: stddev of the dense kernel's truncated-normal initializer.

    Call args:
      hidden: [B, P, D] generator states at the masked positions.

    Returns:
      [B, P, V] logits (float32 under mixed precision).
    """

    def __init__(self, embedding_layer, activation="gelu", initializer_range=0.02, **kwargs):
        super().__init__(**kwargs)
        self.embedding_layer = embedding_layer
        self.activation = activation
        self.initializer_range = initializer_range
        self.dense = keras.layers.Dense(
            embedding_layer.embedding_size, activation=get_activation(activation),
            kernel_initializer=truncated_normal(initializer_range), dtype=self.dtype_policy, name="dense")
        self.layer_norm = LayerNorm(
            epsilon=LAYER_NORM_EPSILON, dtype=self.dtype_policy, name="LayerNorm")

    def build(self, hidden_shape):
        if not self.embedding_layer.built:  # a head rebuilt from its config brings its own table
            self.embedding_layer.build()
        self.dense.build(hidden_shape)
        self.layer_norm.build(tuple(hidden_shape[:-1]) + (self.embedding_layer.embedding_size,))
        self.output_bias = self.add_weight(name="output_bias", shape=(self.embedding_layer.vocab_size,),
                                           initializer="zeros")

    def call(self, hidden):
        projected = self.layer_norm(self.dense(hidden))  # [B, P, E]
        word_embeddings = keras.ops.cast(self.embedding_layer.word_embeddings, self.compute_dtype)  # [V, E]
        logits = ops.einsum("BPE,VE->BPV", projected, word_embeddings)  # [B, P, V]
        logits = ops.upcast_half(logits)
        return logits + keras.ops.cast(self.output_bias, logits.dtype)

    def compute_output_shape(self, hidden_shape):
        return tuple(hidden_shape[:-1]) + (self.embedding_layer.vocab_size,)

    def get_config(self):
        config = super().get_config()
        config.update(embedding_layer=keras.saving.serialize_keras_object(self.embedding_layer),
                      activation=self.activation, initializer_range=self.initializer_range)
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config, embedding_layer=keras.saving.deserialize_keras_object(config["embedding_layer"]))
        return cls(**config)
