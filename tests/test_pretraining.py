"""Pretraining: hparams, the ELECTRA objective's pieces, and short end-to-end runs."""

import io
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from convbert_tf import ConvBertConfig, load_encoder
from convbert_tf.config import ConfigError
from convbert_tf.pretraining import run as trainer
from convbert_tf.pretraining.hparams import resolve_hparams
from convbert_tf.pretraining.model import (ElectraPretrainer, discriminator_losses, masked_lm_losses,
                                           sample_replacements)
from tests import numpy_reference as ref
from tests.pretraining_data import TINY_HPARAMS, VOCAB, write_data_dir
from tests.tf1_checkpoint import write_tf1_checkpoint

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CPU = tf.distribute.OneDeviceStrategy("/cpu:0")


def tiny(data_dir, model_name="run", **changes):
    return resolve_hparams(dict(TINY_HPARAMS, **changes), data_dir=str(data_dir), model_name=model_name)


# ----- hparams ----------------------------------------------------------------------------------

def test_hparams_follow_the_original_resolution(tmp_path):
    small = resolve_hparams({"model_size": "small"}, data_dir="d", model_name="m")
    assert (small.learning_rate, small.train_batch_size, small.generator_hidden_size, small.linear_groups) == (
        3e-4, 128, 0.25, 1)
    assert small.model_config() == ConvBertConfig.from_preset("small")
    assert small.predictions_per_seq == 19
    assert small.model_dir == os.path.join("d", "models", "m")
    assert small.pretrain_tfrecords == os.path.join("d", "pretrain_tfrecords", "pretrain_data.tfrecord*")
    base = resolve_hparams({"model_size": "base", "learning_rate": 1e-4})
    assert (base.learning_rate, base.train_batch_size, base.generator_hidden_size) == (1e-4, 256, 1 / 3)
    assert base.generator_config().hidden_size == 256
    medium = resolve_hparams(None)
    assert (medium.model_size, medium.learning_rate, medium.linear_groups) == ("medium-small", 5e-4, 2)
    debug = resolve_hparams({"debug": True})
    assert (debug.train_batch_size, debug.num_train_steps, debug.model_config().hidden_size) == (8, 20, 144)
    path = tmp_path / "hp.json"
    path.write_text(json.dumps({"model_size": "small", "num_train_steps": 7}))
    assert resolve_hparams(str(path)).num_train_steps == 7


@pytest.mark.parametrize("hparams,words", [
    ('{"model_size": "small", "learning_rat": 1}', ["learning_rat"]),
    ('{"model_size": "large"}', ["large"]),
    ('{"do_eval": true}', ["do_train", "do_eval"]),
    ("{not json", ["not valid JSON"]),
    ('{"train_batch_size": 0}', ["train_batch_size"]),
    ('{"conv_kernel_size": 4}', ["conv_kernel_size"]),
    ("missing.json", ["missing.json"]),
    ('{"untied_generator": false}', ["untied_generator"]),
    ('{"untied_generator_embeddings": true}', ["untied_generator_embeddings"]),
])
def test_bad_hparams_are_named(hparams, words):
    with pytest.raises(ConfigError) as err:
        resolve_hparams(hparams)
    for word in words:
        assert word in str(err.value)


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


# ----- end to end -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return write_data_dir(str(tmp_path_factory.mktemp("pretraining")))


def losses_from(log):
    return [float(line.split("| gen ")[1].split()[0]) for line in log.splitlines() if line.startswith("step ")]


def test_training_loss_falls_and_eval_reports_the_original_metrics(data_dir):
    hp = tiny(data_dir, "falls", num_train_steps=100, iterations_per_loop=10, save_checkpoints_steps=50,
              num_warmup_steps=10)
    out = io.StringIO()
    result = trainer.train(hp, CPU, out=out)
    losses = losses_from(out.getvalue())
    assert len(losses) == 10 and result["step"] == 100
    assert losses[-1] < 0.6 * losses[0], out.getvalue()
    model_dir = hp.model_dir
    assert sorted(f for f in os.listdir(model_dir) if f.endswith(".index")) == ["ckpt-100.index", "ckpt-50.index"]
    assert ConvBertConfig.from_json_file(os.path.join(model_dir, "config.json")) == hp.model_config()
    assert json.load(open(os.path.join(model_dir, "hparams.json")))["num_train_steps"] == 100
    assert os.listdir(os.path.join(model_dir, "train"))  # TensorBoard events

    eval_hp = tiny(data_dir, "falls", do_train=False, do_eval=True, num_eval_steps=4)
    # Eval reads only the held-out last file, never the training records.
    train_files, eval_files = trainer.split_files(eval_hp)
    assert eval_files == [train_files[-1].replace("-0-of-2", "-1-of-2")] and len(train_files) == 1
    results = trainer.evaluate(eval_hp, CPU, out=io.StringIO())
    assert set(results) >= {"loss", "masked_lm_accuracy", "masked_lm_loss", "sampled_masked_lm_accuracy",
                            "disc_loss", "disc_auc", "disc_accuracy", "disc_precision", "disc_recall",
                            "disc_auc_exact"}
    assert results["global_step"] == 100 and results["masked_lm_loss"] < 0.8 * np.log(len(VOCAB))
    assert results["disc_auc"] > 0.6
    assert "disc_auc" in open(eval_hp.results_txt).read()


@pytest.mark.slow  # end to end: CI runs it in the slow tier
def test_interrupted_run_resumes_to_the_same_weights(data_dir):
    out = io.StringIO()
    trainer.train(tiny(data_dir, "whole"), CPU, out=out)
    trainer.train(tiny(data_dir, "parts"), CPU, out=out, stop_at_step=10)
    assert os.path.basename(tf.train.latest_checkpoint(tiny(data_dir, "parts").model_dir)) == "ckpt-10"
    trainer.train(tiny(data_dir, "parts"), CPU, out=out)
    assert "resuming from" in out.getvalue()
    whole = tf.train.load_checkpoint(os.path.join(tiny(data_dir, "whole").model_dir, "ckpt-20"))
    parts = tf.train.load_checkpoint(os.path.join(tiny(data_dir, "parts").model_dir, "ckpt-20"))
    names = [n for n in whole.get_variable_to_shape_map() if n.endswith("VARIABLE_VALUE")]
    assert len(names) > 50
    for name in names:
        np.testing.assert_array_equal(whole.get_tensor(name), parts.get_tensor(name), err_msg=name)
    # A finished run has nothing left to do.
    assert trainer.train(tiny(data_dir, "whole"), CPU, out=out) == {}


@pytest.mark.slow  # end to end: CI runs it in the slow tier
def test_jit_compiled_train_steps(data_dir):
    result = trainer.train(tiny(data_dir, "xla", num_train_steps=4, iterations_per_loop=2), CPU, jit_compile=True,
                           out=io.StringIO())
    assert result["step"] == 4 and np.isfinite(result["total_loss"])


def test_init_from_an_original_release_checkpoint(data_dir, tmp_path):
    hp = tiny(data_dir, "from_original", num_train_steps=1)
    cfg = hp.model_config().to_dict()
    shapes = ref.original_param_shapes(cfg)
    shapes.update(ref.generator_param_shapes(cfg, 0.5))
    shapes.update(ref.pretraining_head_shapes(cfg, ref.generator_config(cfg, 0.5)["hidden_size"]))
    params = ref.random_original_params(shapes, 3)
    write_tf1_checkpoint(params, str(tmp_path / "model.ckpt"), global_step=1000, with_adam_slots=True)
    run = trainer.Pretraining(tiny(data_dir, "from_original"), CPU, out=io.StringIO())
    run.initialize_from(str(tmp_path))
    np.testing.assert_array_equal(run.model.discriminator.embeddings.word_embeddings.numpy(),
                                  params["electra/embeddings/word_embeddings"])
    np.testing.assert_array_equal(run.model.generator.blocks[0].attention.query_dense.kernel.numpy(),
                                  params["generator/encoder/layer_0/attention/self/query/kernel"])
    np.testing.assert_array_equal(run.model.discriminator_head.dense_1.kernel.numpy(),
                                  params["discriminator_predictions/dense_1/kernel"])


def test_setup_errors_are_clear(data_dir, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "vocab.txt").write_text("\n".join(VOCAB))
    with pytest.raises(ConfigError, match="pretrain_data.tfrecord"):
        trainer.train(tiny(empty), CPU, out=io.StringIO())
    with pytest.raises(ConfigError, match="expected|64|32"):
        trainer.train(tiny(data_dir, "long", max_seq_length=64,
                           model_hparam_overrides=dict(TINY_HPARAMS["model_hparam_overrides"],
                                                       max_position_embeddings=64)), CPU, out=io.StringIO())
    other = tiny(data_dir, "falls_other")
    os.makedirs(other.model_dir, exist_ok=True)
    other.model_config().replace(hidden_size=64, intermediate_size=128).to_json_file(
        os.path.join(other.model_dir, "config.json"))
    with pytest.raises(ConfigError, match="another configuration.*hidden_size 64 there vs 32 now"):
        trainer.train(other, CPU, out=io.StringIO())
    bad_vocab = tmp_path / "bad_vocab.txt"
    bad_vocab.write_text("[PAD]\n[UNK]\nhello\n")
    with pytest.raises(ConfigError, match="bad_vocab.txt"):
        trainer.train(tiny(data_dir, "vocab", vocab_file=str(bad_vocab)), CPU, out=io.StringIO())


def _run(args, env=None, timeout=300):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", **(env or {}))
    return subprocess.run([sys.executable] + args, cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)


@pytest.mark.slow  # end to end: CI runs it in the slow tier
def test_two_mirrored_cpu_replicas_give_the_loss_of_one_device(data_dir):
    """Same global batch on 2 logical CPUs and on 1: the same losses and weights (dropout off)."""
    code = f"""
import io, json, sys
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from convbert_tf.pretraining import run as trainer
from convbert_tf.pretraining.hparams import resolve_hparams
from tests.pretraining_data import TINY_HPARAMS
hp = dict(TINY_HPARAMS, num_train_steps=3, iterations_per_loop=1, log_every_steps=1, num_warmup_steps=0)
hp["model_hparam_overrides"] = dict(hp["model_hparam_overrides"], hidden_dropout_prob=0.0,
                                    attention_probs_dropout_prob=0.0)
two = trainer.train(resolve_hparams(hp, data_dir={data_dir!r}, model_name="two"),
                    tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]), out=io.StringIO())
one = trainer.train(resolve_hparams(hp, data_dir={data_dir!r}, model_name="one"),
                    tf.distribute.OneDeviceStrategy("/cpu:0"), out=io.StringIO())
print(json.dumps([two, one]))
"""
    result = _run(["-c", code])
    assert result.returncode == 0, result.stderr[-3000:]
    two, one = json.loads(result.stdout.strip().splitlines()[-1])
    for key in ("mlm_loss", "disc_loss", "total_loss", "masked_lm_accuracy"):
        assert abs(two[key] - one[key]) < 1e-4, (key, two[key], one[key])
    # The discriminators read back from the two runs (pretraining dirs load as encoders) agree.
    a, b = load_encoder(two["checkpoint"]), load_encoder(one["checkpoint"])
    for x, y in zip(a.weights, b.weights):
        np.testing.assert_allclose(x.numpy(), y.numpy(), atol=1e-5, err_msg=x.path)


def test_run_pretraining_cli_errors_exit_non_zero(tmp_path):
    result = _run(["run_pretraining.py", f"--data_dir={tmp_path}", "--model_name=x",
                   '--hparams={"model_size": "small", "bogus": 1}'])
    assert result.returncode == 1
    assert "bogus" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.slow  # end to end: CI runs it in the slow tier
@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_mixed_precision_training_steps(data_dir, policy):
    """bfloat16, and float16 with dynamic loss scaling, train with finite losses close to float32's."""
    import keras
    hp = dict(TINY_HPARAMS, num_train_steps=4, iterations_per_loop=4)
    reference = trainer.train(tiny(data_dir, f"fp32_for_{policy}", **hp), CPU, out=io.StringIO())
    keras.mixed_precision.set_global_policy(policy)
    try:
        run = trainer.Pretraining(tiny(data_dir, policy, **hp), CPU, out=io.StringIO())
        assert run.model.discriminator.embeddings.word_embeddings.dtype == "float32"
        assert run.float16 == (policy == "mixed_float16")
        result = trainer.train(tiny(data_dir, policy, **hp), CPU, out=io.StringIO())
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert result["step"] == 4
    assert abs(result["mlm_loss"] - reference["mlm_loss"]) < 0.1
    assert abs(result["disc_loss"] - reference["disc_loss"]) < 0.1


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
