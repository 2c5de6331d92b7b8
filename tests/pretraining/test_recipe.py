"""Pretraining recipe parity with the original: disallow_correct under a temperature, the uniform
generator (no network, constant MLM loss) end to end, and the eval metrics' inputs."""

import dataclasses
import io
import os

import numpy as np
import pytest
import tensorflow as tf

from convbert_tf import ConvBertConfig
from convbert_tf.checkpoints import load_original_pretraining_checkpoint
from convbert_tf.config import ConfigError
from convbert_tf.pretraining import run as trainer
from convbert_tf.pretraining.hparams import resolve_hparams
from convbert_tf.models.electra import build_pretrainer
from convbert_tf.models.electra_losses import per_example_gumbel_noise, sample_replacements
from tests.pretraining_data import TINY_HPARAMS, VOCAB, write_data_dir

CPU = tf.distribute.OneDeviceStrategy("/cpu:0")
ROWS = 200
SEEDS = np.stack([np.full(ROWS, 3), np.arange(ROWS)], axis=1)  # [B, 2]


def gumbel_rows(num_tokens):
    """The noise sample_replacements adds for SEEDS and one slot: [ROWS, V]."""
    return per_example_gumbel_noise([ROWS, 1, num_tokens], tf.constant(SEEDS))[:, 0].numpy()


# ----- disallow_correct: divide by the temperature, then subtract 1000 ---------------------------

@pytest.mark.parametrize("temperature,logits,allowed_after,wrong_order", [
    # T = 1000: logits / T = [3, 0, 0], then token 0 gets -1000: [-997, 0, 0], never sampled.
    # (Penalty first: (3000 - 1000) / 1000 = 2, so token 0 would win most rows.)
    (1000.0, [3000.0, 0.0, 0.0], [-997.0, 0.0, 0.0], [2.0, 0.0, 0.0]),
    # T = 0.5: [2, 1200, 0], then token 1 gets -1000: [2, 200, 0], so the correct token still wins.
    # (Penalty first: (600 - 1000) / 0.5 = -800, never sampled.)
    (0.5, [1.0, 600.0, 0.0], [2.0, 200.0, 0.0], [2.0, -800.0, 0.0]),
])
def test_disallow_correct_penalty_comes_after_the_temperature(temperature, logits, allowed_after, wrong_order):
    original_id = int(np.argmax(logits))
    noise = gumbel_rows(3)  # [ROWS, 3]
    got = sample_replacements(np.tile(np.array(logits, np.float32), (ROWS, 1, 1)), SEEDS, temperature,
                              original_ids=np.full((ROWS, 1), original_id, np.int32)).numpy()[:, 0]
    np.testing.assert_array_equal(got, np.argmax(np.array(allowed_after) + noise, axis=-1))
    wrong = np.argmax(np.array(wrong_order) + noise, axis=-1)
    assert np.mean(got == wrong) < 0.5  # the other order gives other samples: the test can fail
    assert np.all(got == original_id) == (temperature < 1)


# ----- the uniform generator ---------------------------------------------------------------------

TINY_CONFIG = ConvBertConfig(vocab_size=len(VOCAB), hidden_size=32, num_hidden_layers=1, num_attention_heads=4,
                             intermediate_size=64, embedding_size=16, max_position_embeddings=16,
                             conv_kernel_size=3)


def tiny_features():
    input_ids = np.array([[2, 10, 11, 12, 13, 3, 0, 0], [2, 20, 21, 3, 0, 0, 0, 0]], np.int32)
    features = {
        "input_ids": input_ids, "input_mask": (input_ids > 0).astype(np.int32),
        "segment_ids": np.zeros_like(input_ids),
        "masked_input_ids": np.array([[2, 4, 11, 4, 13, 3, 0, 0], [2, 4, 21, 3, 0, 0, 0, 0]], np.int32),
        "masked_lm_positions": np.array([[1, 3, 0], [1, 0, 0]], np.int32),
        "masked_lm_ids": np.array([[10, 12, 0], [20, 0, 0]], np.int32),
        "masked_lm_weights": np.array([[1, 1, 0], [1, 0, 0]], np.float32),
        "sampling_seeds": np.array([[1, 2], [1, 3]], np.int64),
    }
    return {k: tf.constant(v) for k, v in features.items()}


def test_uniform_generator_has_no_network_and_a_constant_mlm_loss():
    model = build_pretrainer(TINY_CONFIG, uniform_generator=True, disc_weight=50.0)
    assert model.generator is None and model.generator_head is None
    assert set(model.networks()) == {"encoder", "discriminator_head"}
    own = model.discriminator.trainable_variables + model.discriminator_head.trainable_variables
    assert {id(v) for v in model.trainable_variables} == {id(v) for v in own}
    features = tiny_features()
    with tf.GradientTape(persistent=True) as tape:
        outputs = model(features, training=True)
    np.testing.assert_array_equal(outputs["mlm_logits"].numpy(), np.zeros((2, 3, len(VOCAB))))
    log_v = np.log(len(VOCAB))
    np.testing.assert_allclose(outputs["mlm_losses"].numpy(), np.full((2, 3), log_v), rtol=1e-6)
    np.testing.assert_allclose(outputs["mlm_loss"].numpy(), 3 * log_v / (3 + 1e-6), rtol=1e-6)
    assert all(g is None for g in tape.gradient(outputs["mlm_loss"], model.trainable_variables))
    # The same Gumbel-max path on zero logits: uniform over the whole vocab.
    expected = sample_replacements(tf.zeros((2, 3, len(VOCAB))), features["sampling_seeds"])
    np.testing.assert_array_equal(outputs["sampled_ids"].numpy(), expected.numpy())
    # disc_example_losses: each sequence's mean sigmoid cross-entropy over its real tokens.
    logits, labels = outputs["disc_logits"].numpy(), outputs["disc_labels"].numpy()
    mask = features["input_mask"].numpy()
    bce = np.maximum(logits, 0) - logits * labels + np.log1p(np.exp(-np.abs(logits)))
    np.testing.assert_allclose(outputs["disc_example_losses"].numpy(),
                               (bce * mask).sum(1) / (mask.sum(1) + 1e-6), rtol=1e-5)
    np.testing.assert_allclose(outputs["disc_loss"].numpy(), (bce * mask).sum() / (mask.sum() + 1e-6), rtol=1e-5)


def test_uniform_generator_needs_the_electra_objective():
    with pytest.raises(ConfigError, match="uniform_generator"):
        resolve_hparams({"uniform_generator": True, "electra_objective": False})
    with pytest.raises(ValueError, match="uniform_generator"):
        build_pretrainer(TINY_CONFIG, uniform_generator=True, electra_objective=False)


def head_kernel(checkpoint):
    """The discriminator head's first kernel as saved in one of this project's checkpoints."""
    reader = tf.train.load_checkpoint(checkpoint)
    names = [n for n in reader.get_variable_to_shape_map() if n.startswith("discriminator_head/dense/")
             and "kernel" in n]
    assert len(names) == 1, names
    return reader.get_tensor(names[0])


@pytest.fixture(scope="module")
def uniform_run(tmp_path_factory):
    """A tiny uniform-generator run of 2 steps."""
    data_dir = write_data_dir(str(tmp_path_factory.mktemp("uniform")))
    hp = resolve_hparams(dict(TINY_HPARAMS, uniform_generator=True, num_train_steps=2, iterations_per_loop=1),
                         data_dir=data_dir, model_name="uniform")
    return hp, trainer.train(hp, CPU, out=io.StringIO())


def test_uniform_generator_trains_resumes_and_initializes(uniform_run):
    hp, result = uniform_run
    assert result["step"] == 2
    assert result["mlm_loss"] == pytest.approx(np.log(len(VOCAB)), rel=1e-5)
    checkpoint = os.path.join(hp.model_dir, "ckpt-2")
    names = [n for n, _ in tf.train.list_variables(checkpoint)]
    assert not any(n.startswith("generator") for n in names)
    # A rerun resumes from it (every saved object matched), and another run can start from it.
    resumed = trainer.Pretraining(hp, CPU, out=io.StringIO())
    assert resumed.restore_or_initialize(resumed.checkpoint_manager()) == 2
    np.testing.assert_array_equal(resumed.model.discriminator_head.dense.kernel.numpy(), head_kernel(checkpoint))
    started = trainer.Pretraining(dataclasses.replace(hp, model_dir=hp.model_dir + "_init"), CPU, out=io.StringIO())
    started.initialize_from(checkpoint)
    np.testing.assert_array_equal(started.model.discriminator_head.dense.kernel.numpy(), head_kernel(checkpoint))
    # So can a run with a generator network, whose generator starts from random weights.
    out = io.StringIO()
    with_generator = trainer.Pretraining(dataclasses.replace(hp, uniform_generator=False,
                                                             model_dir=hp.model_dir + "_generator"), CPU, out=out)
    with_generator.initialize_from(checkpoint)
    np.testing.assert_array_equal(with_generator.model.discriminator_head.dense.kernel.numpy(),
                                  head_kernel(checkpoint))
    assert "has no generator" in out.getvalue() and "has no generator_head" in out.getvalue()


@pytest.mark.slow
def test_uniform_generator_run_exports_the_original_layout(uniform_run):
    hp = uniform_run[0]
    trainer.train(dataclasses.replace(hp, export_at_end=True), CPU, out=io.StringIO())  # the missing export
    original = tf.train.latest_checkpoint(os.path.join(hp.model_dir, "original_layout"))
    names = [n for n, _ in tf.train.list_variables(original)]
    assert not any(n.startswith("generator") for n in names)
    assert "discriminator_predictions/dense/kernel" in names and "electra/embeddings/word_embeddings" in names
    models = load_original_pretraining_checkpoint(original, hp.model_config())
    assert models.generator is None and models.generator_head is None and models.global_step == 2
    np.testing.assert_array_equal(models.discriminator_head.dense.kernel.numpy(),
                                  head_kernel(os.path.join(hp.model_dir, "ckpt-2")))


def test_uniform_generator_eval_reports_log_v(uniform_run):
    hp = uniform_run[0]
    log_v = np.log(len(VOCAB))
    eval_hp = dataclasses.replace(hp, do_train=False, do_eval=True, num_eval_steps=2)
    results = trainer.evaluate(eval_hp, CPU, out=io.StringIO())
    assert results["masked_lm_loss"] == pytest.approx(log_v, rel=1e-6)
    assert results["masked_lm_accuracy"] == 0.0  # the argmax of zero logits is id 0, never a masked word
    assert {"disc_loss", "disc_auc", "disc_auc_exact", "disc_accuracy"} <= set(results)
    # disc_weight 0: the loss is the constant MLM loss, and the discriminator's metrics are left
    # out as the original leaves them out.
    results = trainer.evaluate(dataclasses.replace(eval_hp, disc_weight=0.0), CPU, out=io.StringIO())
    assert results["loss"] == pytest.approx(log_v, rel=1e-5)
    assert not any(k.startswith("disc_") for k in results)


def test_bert_mode_initializes_from_its_own_checkpoint(uniform_run, tmp_path):
    """BERT mode names its encoder twice (encoder, generator); a checkpoint holds it once."""
    hp = dataclasses.replace(uniform_run[0], uniform_generator=False, electra_objective=False)
    saved = trainer.Pretraining(dataclasses.replace(hp, model_dir=str(tmp_path / "a")), CPU, out=io.StringIO())
    for variable in saved.model.trainable_variables:  # other values than a fresh build's (same seed)
        variable.assign_add(tf.ones_like(variable))
    prefix = saved.checkpoint.write(str(tmp_path / "bert"))
    out = io.StringIO()
    started = trainer.Pretraining(dataclasses.replace(hp, model_dir=str(tmp_path / "b")), CPU, out=out)
    started.initialize_from(prefix)
    assert "has no" not in out.getvalue()
    for a, b in zip(saved.model.trainable_variables, started.model.trainable_variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
