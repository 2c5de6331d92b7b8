"""ConvBertEncoder: embeddings, optional E -> D projection and L ConvBERT blocks.

Legend: B batch, T length, E embedding width, D hidden, L layers.
"""

import keras

from convbert_tf.config import ConvBertConfig, load_config
from convbert_tf.layers.conv_bert_embeddings import ConvBertEmbeddings
from convbert_tf.layers.conv_bert_block import ConvBertBlock

INPUT_KEYS = ("input_ids", "input_mask", "segment_ids")


@keras.saving.register_keras_serializable(package="convbert_tf")
class ConvBertEncoder(keras.Model):
    """The ConvBERT encoder (the released discriminator, or an ELECTRA generator).

      embeddings  = ConvBertEmbeddings(input_ids, segment_ids)        [B, T, E]
      hidden_0    = embeddings W_proj + b_proj if E != D else embeddings  [B, T, D]
      hidden_l    = ConvBertBlock_l(hidden_{l-1}, input_mask)         [B, T, D], l = 1..L

    The projection uses glorot-uniform initialization and has no dropout or LayerNorm after
    it, as in the original. There is no pooler: `pooled_output` is the [CLS] state.

    Inputs: a dict of int32 [B, T] tensors `input_ids`, `input_mask` (1 = real token; default
    all ones) and `segment_ids` (default all zeros).

    Outputs: a dict with `sequence_output` [B, T, D], `pooled_output` [B, D] and
    `hidden_states`, a list of L + 1 tensors [B, T, D] (hidden_0, then every layer).

    Args:
      config: a ConvBertConfig, preset name, JSON path or dict.
      embedding_layer: a ConvBertEmbeddings to share (the ELECTRA generator shares the
        discriminator's tables, and owns only its projection); built here when None.
      name: 'electra' for a discriminator (the original's scope), 'generator' for a generator.
    """

    def __init__(self, config, embedding_layer=None, name="electra", **kwargs):
        super().__init__(name=name, **kwargs)
        config = load_config(config)
        self.config = config
        embedding_size = config.resolved_embedding_size
        if embedding_layer is None:
            embedding_layer = ConvBertEmbeddings(
                config.vocab_size, embedding_size, config.max_position_embeddings,
                config.type_vocab_size, config.initializer_range, config.hidden_dropout_prob,
                dtype=self.dtype_policy, name="embeddings")
        elif (embedding_layer.embedding_size, embedding_layer.vocab_size) != (embedding_size, config.vocab_size):
            raise ValueError(
                f"shared embedding layer is [{embedding_layer.vocab_size}, {embedding_layer.embedding_size}] "
                f"but the config needs [{config.vocab_size}, {embedding_size}]")
        self.embeddings = embedding_layer
        self.embeddings_project = None
        if embedding_size != config.hidden_size:
            self.embeddings_project = keras.layers.Dense(
                config.hidden_size, kernel_initializer="glorot_uniform", dtype=self.dtype_policy,
                name="embeddings_project")
        # One attribute per block (not a list): Keras 3 lists are invisible to tf.train.Checkpoint.
        for i in range(config.num_hidden_layers):
            setattr(self, f"layer_{i}", ConvBertBlock(
                config.hidden_size, config.num_attention_heads, config.intermediate_size,
                head_ratio=config.head_ratio, conv_kernel_size=config.conv_kernel_size,
                conv_type=config.conv_type, linear_groups=config.linear_groups,
                hidden_act=config.hidden_act, hidden_dropout=config.hidden_dropout_prob,
                attention_dropout=config.attention_probs_dropout_prob,
                initializer_range=config.initializer_range,
                conv_mask_padding=config.conv_mask_padding,
                conv_implementation=config.conv_implementation, dtype=self.dtype_policy,
                name=f"layer_{i}"))
        self.build()

    @property
    def blocks(self):
        """The L encoder blocks, bottom first."""
        return [getattr(self, f"layer_{i}") for i in range(self.config.num_hidden_layers)]

    def build(self, input_shape=None):
        if not self.embeddings.built:
            self.embeddings.build()
        if self.embeddings_project is not None:
            self.embeddings_project.build((None, None, self.config.resolved_embedding_size))
        for block in self.blocks:
            block.build((None, None, self.config.hidden_size))
        self.built = True

    def call(self, inputs, training=None):
        missing = [k for k in ("input_ids",) if k not in inputs]
        if missing:
            raise KeyError(f"ConvBertEncoder inputs need {list(INPUT_KEYS)}; missing {missing}")
        input_ids = inputs["input_ids"]
        input_mask = inputs.get("input_mask")
        if input_mask is None:
            input_mask = keras.ops.ones_like(input_ids)
        segment_ids = inputs.get("segment_ids")
        if segment_ids is None:
            segment_ids = keras.ops.zeros_like(input_ids)

        hidden = self.embeddings(input_ids, segment_ids, training=training)  # [B, T, E]
        if self.embeddings_project is not None:
            hidden = self.embeddings_project(hidden)  # [B, T, D]
        hidden_states = [hidden]
        for block in self.blocks:
            hidden = block(hidden, input_mask, training=training)  # [B, T, D]
            hidden_states.append(hidden)
        return {
            "sequence_output": hidden,
            "pooled_output": hidden[:, 0],  # [B, D]
            "hidden_states": hidden_states,
        }

    def get_config(self):
        return {"config": self.config.to_dict(), "name": self.name}

    @classmethod
    def from_config(cls, config):
        return cls(ConvBertConfig.from_dict(config["config"]), name=config.get("name", "electra"))
