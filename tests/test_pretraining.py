"""Pretraining: the ELECTRA objective's pieces (losses, sampling, the pretrainer's labels)."""

import numpy as np
import tensorflow as tf

from convbert_tf import ConvBertConfig
from convbert_tf.pretraining.model import (ElectraPretrainer, discriminator_losses, masked_lm_losses,
                                           sample_replacements)
from tests.pretraining_data import VOCAB


# ----- the objective's pieces -------------------------------------------------------------------

def test_losses_match_numpy():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(2, 3, 7)).astype(np.float32)
    labels = rng.integers(0, 7, size=(2, 3)).astype(np.int32)
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    expected = -np.take_along_axis(log_probs, labels[..., None], -1)[..., 0]  # [B, P]
    np.testing.assert_allclose(masked_lm_losses(logits, labels).numpy(), expected, rtol=1e-5)
    disc_logits = rng.normal(size=(2, 4)).astype(np.float32)
    disc_labels = np.array([[0, 1, 0, 1], [1, 0, 0, 0]])
    mask = np.array([[1, 1, 1, 1], [1, 1, 0, 0]])
    probs = 1 / (1 + np.exp(-disc_logits))
    bce = -(disc_labels * np.log(probs) + (1 - disc_labels) * np.log(1 - probs))
    np.testing.assert_allclose(discriminator_losses(disc_logits, disc_labels, mask).numpy(), bce * mask, rtol=1e-5)


def test_gumbel_sampling_follows_the_softmax():
    logits = np.log(np.array([0.5, 0.3, 0.15, 0.05], np.float32))
    n = 2000
    seeds = np.stack([np.full(n, 7), np.arange(n)], axis=1)
    samples = sample_replacements(np.tile(logits, (n, 1, 1)), seeds).numpy()[:, 0]
    frequencies = np.bincount(samples, minlength=4) / n
    np.testing.assert_allclose(frequencies, [0.5, 0.3, 0.15, 0.05], atol=4 * np.sqrt(0.25 / n))
    # disallow_correct never returns the original token, whatever its logit.
    original = np.zeros((n, 1), np.int32)
    assert not np.any(sample_replacements(np.tile(logits, (n, 1, 1)), seeds, original_ids=original).numpy() == 0)
    # A temperature near 0 gives the argmax.
    assert np.all(sample_replacements(np.tile(logits, (n, 1, 1)), seeds, temperature=1e-4).numpy() == 0)


def test_pretrainer_labels_and_total_loss():
    config = ConvBertConfig(vocab_size=len(VOCAB), hidden_size=32, num_hidden_layers=1, num_attention_heads=4,
                            intermediate_size=64, embedding_size=16, max_position_embeddings=16, conv_kernel_size=3)
    model = ElectraPretrainer(config, generator_hidden_size=0.25, gen_weight=1.0, disc_weight=50.0)
    input_ids = np.array([[2, 10, 11, 12, 13, 3, 0, 0]], np.int32)
    features = {
        "input_ids": input_ids, "input_mask": (input_ids > 0).astype(np.int32), "segment_ids": np.zeros_like(input_ids),
        "masked_input_ids": np.array([[2, 4, 11, 4, 13, 3, 0, 0]], np.int32),
        "masked_lm_positions": np.array([[1, 3, 0]], np.int32), "masked_lm_ids": np.array([[10, 12, 0]], np.int32),
        "masked_lm_weights": np.array([[1, 1, 0]], np.float32), "sampling_seeds": np.array([[1, 2]], np.int64),
    }
    outputs = model({k: tf.constant(v) for k, v in features.items()}, training=False)
    sampled = outputs["sampled_ids"].numpy()[0]
    labels = outputs["disc_labels"].numpy()[0]
    expected = np.zeros(8, np.int32)
    expected[1], expected[3] = int(sampled[0] != 10), int(sampled[1] != 12)
    np.testing.assert_array_equal(labels, expected)  # only masked slots, and a correct sample is "real"
    np.testing.assert_allclose(outputs["total_loss"].numpy(),
                               outputs["mlm_loss"].numpy() + 50.0 * outputs["disc_loss"].numpy(), rtol=1e-6)
    # The generator shares the discriminator's tables and has its own projection.
    assert model.generator.embeddings is model.discriminator.embeddings
    assert model.generator.embeddings_project.kernel.shape == (16, 8)


def test_gumbel_noise_rows_follow_their_seeds_in_and_out_of_xla():
    """Row i is gumbel_noise(seed_i): TensorFlow's default (Philox) stream outside XLA, ThreeFry
    under XLA, whether the batch is static (rows drawn one op each) or not (a map_fn loop)."""
    from convbert_tf.pretraining.model import gumbel_noise, per_example_gumbel_noise

    seeds = tf.constant([[1, 2], [1, 3], [9, 4]], tf.int64)
    shape = [3, 5, 7]
    plain = tf.function(lambda s: per_example_gumbel_noise(shape, s))(seeds).numpy()
    for i in range(3):
        u = tf.random.stateless_uniform(shape[1:], seeds[i], dtype=tf.float32).numpy()
        np.testing.assert_allclose(plain[i], -np.log(-np.log(u + 1e-9) + 1e-9), rtol=1e-6)
    static = tf.function(lambda s: per_example_gumbel_noise(shape, s), jit_compile=True)(seeds).numpy()
    dynamic = tf.function(lambda s: per_example_gumbel_noise(shape, s), jit_compile=True,
                          input_signature=[tf.TensorSpec([None, 2], tf.int64)])(seeds).numpy()
    rows = np.stack([tf.function(lambda s: gumbel_noise(shape[1:], s, xla=True), jit_compile=True)(seeds[i]).numpy()
                     for i in range(3)])
    np.testing.assert_allclose(static, rows, rtol=1e-6)
    np.testing.assert_allclose(dynamic, rows, rtol=1e-6)
    assert np.abs(static - plain).max() > 0.1  # another generator


def test_gumbel_sampling_under_xla_follows_the_softmax():
    logits = np.log(np.array([0.5, 0.3, 0.15, 0.05], np.float32))
    n = 2000
    seeds = np.stack([np.full(n, 7), np.arange(n)], axis=1)
    sample = tf.function(sample_replacements, jit_compile=True,
                         input_signature=[tf.TensorSpec([None, 1, 4]), tf.TensorSpec([None, 2], tf.int64)])
    samples = sample(np.tile(logits, (n, 1, 1)), seeds).numpy()[:, 0]
    frequencies = np.bincount(samples, minlength=4) / n
    np.testing.assert_allclose(frequencies, [0.5, 0.3, 0.15, 0.05], atol=4 * np.sqrt(0.25 / n))
