"""ConvBertEncoder: exact released sizes, inputs and outputs, clear errors."""

import numpy as np
import pytest
import tensorflow as tf

from convbert_tf import ConvBertConfig, ConvBertEncoder, generator_config
from convbert_tf.models.electra import build_generator
from tiny_configs import micro_config


@pytest.mark.parametrize("size,discriminator,generator,generator_head", [
    ("small", 13_143_768, 770_988, 39_098),
    ("medium-small", 17_475_888, 871_884, 43_194),
    ("base", 105_680_520, 9_334_744, 229_434),
])
def test_parameter_counts_are_exactly_the_released_ones(size, discriminator, generator, generator_head):
    encoder = ConvBertEncoder(ConvBertConfig.from_preset(size))
    assert encoder.count_params() == discriminator
    fraction = 1 / 3 if size == "base" else 0.25
    gen, head = build_generator(encoder, fraction)
    shared = encoder.embeddings.count_params()
    assert gen.count_params() - shared == generator
    assert head.count_params() - shared == generator_head  # the tied table is tracked, not owned
    del encoder, gen, head


def test_small_generator_uses_the_one_head_fallback():
    gen = generator_config(ConvBertConfig.from_preset("small"), 0.25)
    encoder = ConvBertEncoder(gen, name="generator")
    # One attention + one conv head of size 64 in a 64-wide model: the output dense is [128, 64].
    assert encoder.blocks[0].attention.output_dense.kernel.shape == (128, 64)


def test_outputs_and_default_inputs():
    config = micro_config()
    encoder = ConvBertEncoder(config)
    ids = tf.constant([[1, 4, 5, 2]])
    full = encoder({"input_ids": ids, "input_mask": tf.ones_like(ids), "segment_ids": tf.zeros_like(ids)})
    default = encoder({"input_ids": ids})
    assert full["sequence_output"].shape == (1, 4, 16)
    assert full["pooled_output"].shape == (1, 16)
    assert len(full["hidden_states"]) == 4
    np.testing.assert_array_equal(full["pooled_output"].numpy(), full["sequence_output"].numpy()[:, 0])
    np.testing.assert_array_equal(full["hidden_states"][-1].numpy(), full["sequence_output"].numpy())
    np.testing.assert_array_equal(default["sequence_output"].numpy(), full["sequence_output"].numpy())
    with pytest.raises(ValueError, match="max_position_embeddings"):
        encoder({"input_ids": tf.ones((1, 9), tf.int32)})
    with pytest.raises(KeyError, match="input_ids"):
        encoder({"ids": ids})


def test_runs_in_a_compiled_function_with_static_shapes():
    config = micro_config(num_hidden_layers=1, linear_groups=2)
    encoder = ConvBertEncoder(config)
    batch = {"input_ids": tf.constant([[1, 4, 5, 2]]), "input_mask": tf.constant([[1, 1, 1, 0]]),
             "segment_ids": tf.constant([[0, 0, 1, 1]])}
    eager = encoder(batch)["sequence_output"]
    compiled = tf.function(lambda b: encoder(b)["sequence_output"], jit_compile=True)(batch)
    assert compiled.shape == (1, 4, 16)
    np.testing.assert_allclose(compiled.numpy(), eager.numpy(), atol=1e-5)
