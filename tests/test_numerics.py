"""The Keras model against the independent NumPy reference of the original computation.

Weights are random (non-trivial biases and LayerNorm parameters) and assigned through the
original-name map, so a wrong name mapping fails here too.
"""

import numpy as np
import pytest
import tensorflow as tf

from convbert_tf import ConvBertEncoder
from convbert_tf.checkpoints import original_variable_map
import numpy_reference as ref
from tiny_configs import padded_batch, tiny_config

ATOL = 1e-5


def encoder_with_reference_weights(config, seed=0):
    params = ref.random_original_params(ref.original_param_shapes(config.to_dict()), seed)
    encoder = ConvBertEncoder(config)
    variables = original_variable_map(encoder)
    assert sorted(variables) == sorted(params)
    for name, variable in variables.items():
        variable.assign(params[name])
    return encoder, params


CASES = {
    "k1": dict(conv_kernel_size=1),
    "k3": dict(conv_kernel_size=3),
    "k9": dict(conv_kernel_size=9),
    "ratio1": dict(head_ratio=1),
    "ratio4": dict(head_ratio=4),
    "ratio8_fallback": dict(head_ratio=8),
    "groups2": dict(linear_groups=2),
    "no_projection": dict(embedding_size=None),
    "noconv": dict(conv_type="noconv"),
    "relu": dict(hidden_act="relu"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_encoder_matches_numpy_reference(case):
    config = tiny_config(**CASES[case])
    encoder, params = encoder_with_reference_weights(config)
    batch = padded_batch(config)
    outputs = encoder({k: tf.constant(v) for k, v in batch.items()}, training=False)
    expected = ref.np_encoder(params, config.to_dict(), batch["input_ids"], batch["input_mask"],
                              batch["segment_ids"])
    assert len(outputs["hidden_states"]) == config.num_hidden_layers + 1
    for got, want in zip(outputs["hidden_states"], expected):
        np.testing.assert_allclose(got.numpy(), want, atol=ATOL, rtol=0)
    np.testing.assert_allclose(outputs["pooled_output"].numpy(), expected[-1][:, 0], atol=ATOL, rtol=0)


@pytest.mark.parametrize("kernel_size,head_ratio,groups", [(1, 2, 1), (3, 4, 2), (9, 1, 2), (9, 2, 1)])
def test_span_conv_and_mixed_attention_match_numpy(kernel_size, head_ratio, groups):
    config = tiny_config(conv_kernel_size=kernel_size, head_ratio=head_ratio, linear_groups=groups,
                         num_hidden_layers=1)
    encoder, params = encoder_with_reference_weights(config, seed=3)
    layer_params = ref.get_layer_params(params, "electra", 0)
    batch = padded_batch(config, seed=4)
    hidden = np.random.default_rng(5).normal(size=(3, 12, 32)).astype(np.float32)
    attention = encoder.blocks[0].attention
    query = attention.query_dense(tf.constant(hidden))
    conv = attention.span_conv(tf.constant(hidden), query, tf.constant(batch["input_mask"]))
    np.testing.assert_allclose(
        conv.numpy(), ref.np_span_conv(hidden, query.numpy(), layer_params, config.to_dict()), atol=ATOL, rtol=0)
    mixed = attention(tf.constant(hidden), tf.constant(batch["input_mask"]))
    np.testing.assert_allclose(
        mixed.numpy(), ref.np_mixed_attention(hidden, batch["input_mask"], layer_params, config.to_dict()),
        atol=ATOL, rtol=0)


def test_conv_heads_ignore_padding_mask_like_the_original():
    """Default: padding changes the last (k-1)/2 real tokens, exactly as the original computes."""
    config = tiny_config(conv_kernel_size=5)
    encoder, _ = encoder_with_reference_weights(config)
    batch = padded_batch(config, lengths=(7, 7, 7))
    padded = encoder({k: tf.constant(v) for k, v in batch.items()})["sequence_output"].numpy()
    short = encoder({k: tf.constant(v[:, :7]) for k, v in batch.items()})["sequence_output"].numpy()
    assert np.max(np.abs(padded[:, :7] - short)) > 1e-3


def test_conv_mask_padding_makes_real_tokens_independent_of_padding():
    config = tiny_config(conv_kernel_size=5, conv_mask_padding=True)
    encoder, params = encoder_with_reference_weights(config)
    batch = padded_batch(config, lengths=(7, 5, 3))
    outputs = []
    for length in (7, 12, 20):  # the same real tokens followed by 0, 5 and 13 padding positions
        padded = {k: np.pad(v[:, :7], [[0, 0], [0, length - 7]]) for k, v in batch.items()}
        outputs.append(encoder({k: tf.constant(v) for k, v in padded.items()})["hidden_states"])
    mask = batch["input_mask"][:, :7].astype(bool)
    for states in outputs[1:]:
        for got, want in zip(states, outputs[0]):
            np.testing.assert_allclose(got.numpy()[:, :7][mask], want.numpy()[mask], atol=1e-5, rtol=0)
    # And it is what the reference computes with the same option.
    expected = ref.np_encoder(params, config.to_dict(), batch["input_ids"], batch["input_mask"],
                              batch["segment_ids"], mask_padding=True)
    got = encoder({k: tf.constant(v) for k, v in batch.items()})["sequence_output"].numpy()
    np.testing.assert_allclose(got, expected[-1], atol=ATOL, rtol=0)


def test_dropout_is_active_only_in_training():
    config = tiny_config()
    encoder, _ = encoder_with_reference_weights(config)
    batch = {k: tf.constant(v) for k, v in padded_batch(config).items()}
    eval_a = encoder(batch, training=False)["sequence_output"]
    eval_b = encoder(batch)["sequence_output"]
    train = encoder(batch, training=True)["sequence_output"]
    np.testing.assert_array_equal(eval_a.numpy(), eval_b.numpy())
    assert np.max(np.abs(train.numpy() - eval_a.numpy())) > 1e-3


@pytest.mark.parametrize("policy,atol", [("mixed_float16", 0.05), ("mixed_bfloat16", 0.15)])
def test_mixed_precision_is_close_to_float32(policy, atol):
    config = tiny_config(conv_kernel_size=5, linear_groups=2)
    reference, params = encoder_with_reference_weights(config)
    batch = {k: tf.constant(v) for k, v in padded_batch(config).items()}
    expected = reference(batch)["sequence_output"].numpy()
    encoder = ConvBertEncoder(config, dtype=policy)
    for name, variable in original_variable_map(encoder).items():
        assert variable.dtype == "float32"  # master weights stay float32
        variable.assign(params[name])
    outputs = encoder(batch)
    compute = "float16" if policy == "mixed_float16" else "bfloat16"
    assert outputs["sequence_output"].dtype == compute
    got = tf.cast(outputs["sequence_output"], tf.float32).numpy()
    assert np.all(np.isfinite(got))
    np.testing.assert_allclose(got, expected, atol=atol, rtol=0)
    # Softmaxes and LayerNorms run in float32; the error stays far below the activations' scale.
    assert np.mean(np.abs(got - expected)) < atol / 4
