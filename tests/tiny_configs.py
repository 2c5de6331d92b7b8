"""The tiny ConvBertConfigs (and a padded batch for them) the layer, encoder, numerics and
benchmark tests build, so that every test module sizes its model the same way."""

import numpy as np

from convbert_tf import ConvBertConfig

# The layer tests' widths: hidden D = 12 in 4 heads of H = 3, so head_ratio 2 gives 2 attention
# and 2 convolution heads (C = 6).
LAYER_HIDDEN, LAYER_HEADS = 12, 4


def tiny_config(**changes):
    """A two-layer encoder with every ConvBERT part (E != D, K 3, dropout on); `changes` override."""
    values = dict(vocab_size=40, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                  intermediate_size=64, embedding_size=16, max_position_embeddings=24,
                  conv_kernel_size=3, head_ratio=2, linear_groups=1, hidden_dropout_prob=0.1,
                  attention_probs_dropout_prob=0.1)
    values.update(changes)
    return ConvBertConfig(**values)


def micro_config(**changes):
    """A 16-wide encoder of 8 positions (the config's other fields at their defaults); `changes` override."""
    values = dict(vocab_size=20, hidden_size=16, num_hidden_layers=3, num_attention_heads=2,
                  intermediate_size=32, max_position_embeddings=8, conv_kernel_size=3)
    values.update(changes)
    return ConvBertConfig(**values)


def padded_batch(config, seed=1, length=12, lengths=(12, 9, 5)):
    """Inputs of len(lengths) rows padded to `length`: ids, 1/0 mask, two segments per row."""
    rng = np.random.default_rng(seed)
    input_ids = rng.integers(1, config.vocab_size, size=(len(lengths), length)).astype(np.int32)
    input_mask = np.zeros_like(input_ids)
    for row, n in enumerate(lengths):
        input_mask[row, :n] = 1
    input_ids *= input_mask
    segment_ids = (np.arange(length)[None] >= np.array(lengths)[:, None] // 2).astype(np.int32) * input_mask
    return {"input_ids": input_ids, "input_mask": input_mask, "segment_ids": segment_ids}


def reference_config(**overrides):
    """The tiny config of the NumPy reference's self-checks, as a BertConfig-style dict."""
    values = dict(vocab_size=40, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                  intermediate_size=64, max_position_embeddings=16, type_vocab_size=2,
                  embedding_size=16, head_ratio=2, conv_kernel_size=3, linear_groups=1,
                  conv_type="sdconv", hidden_act="gelu")
    return dict(values, **overrides)


def reference_inputs(rng, batch, length, real_lengths, vocab):
    """Random ids/segments with [PAD]=0 beyond each real length; both segment ids occur."""
    ids = rng.integers(1, vocab, size=(batch, length))
    mask = (np.arange(length)[None] < np.asarray(real_lengths)[:, None]).astype(np.int32)
    segments = (np.arange(length)[None] >= np.asarray(real_lengths)[:, None] // 2).astype(np.int32)
    return ids * mask, mask, segments * mask
