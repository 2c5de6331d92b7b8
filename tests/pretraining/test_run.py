"""The pretraining run (pretraining/run.py): short end-to-end runs, resume, init-from, setup
errors, replicas and mixed precision."""

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
from convbert_tf.pretraining.components import Pretraining
from convbert_tf.pretraining.hparams import resolve_hparams
import numpy_reference as ref
from pretraining_data import TINY_HPARAMS, VOCAB, write_data_dir
from repo_paths import ROOT
from tf1_checkpoint import write_tf1_checkpoint

CPU = tf.distribute.OneDeviceStrategy("/cpu:0")


def tiny(data_dir, model_name="run", **changes):
    return resolve_hparams(dict(TINY_HPARAMS, **changes), data_dir=str(data_dir), model_name=model_name)


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
    run = Pretraining(tiny(data_dir, "from_original"), CPU, out=io.StringIO())
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
        run = Pretraining(tiny(data_dir, policy, **hp), CPU, out=io.StringIO())
        assert run.model.discriminator.embeddings.word_embeddings.dtype == "float32"
        assert run.loss_scale.enabled == (policy == "mixed_float16")
        result = trainer.train(tiny(data_dir, policy, **hp), CPU, out=io.StringIO())
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert result["step"] == 4
    assert abs(result["mlm_loss"] - reference["mlm_loss"]) < 0.1
    assert abs(result["disc_loss"] - reference["disc_loss"]) < 0.1
