"""Original-release checkpoints in and out (checkpoints/original.py), and the converter CLI."""

import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

import convbert_tf
import numpy_reference as ref
from checkpoint_cases import BATCH, CONFIG, run
from convbert_tf import CheckpointError, ConvBertEncoder, io
from convbert_tf.checkpoints import is_original_checkpoint
from convbert_tf.models.electra import build_discriminator_head, build_generator
from repo_paths import ROOT
from tf1_checkpoint import write_tf1_checkpoint

ATOL = 1e-5
GENERATOR_FRACTION = 0.25


def pretraining_params(config=CONFIG, seed=0):
    """Every variable of an original pretraining graph: discriminator, generator, both heads."""
    cfg = config.to_dict()
    shapes = ref.original_param_shapes(cfg)
    shapes.update(ref.generator_param_shapes(cfg, GENERATOR_FRACTION))
    generator_hidden = ref.generator_config(cfg, GENERATOR_FRACTION)["hidden_size"]
    shapes.update(ref.pretraining_head_shapes(cfg, generator_hidden))
    return ref.random_original_params(shapes, seed)


def reference(params, prefix="electra", config=CONFIG):
    return ref.np_encoder(params, config.to_dict(), BATCH["input_ids"], BATCH["input_mask"],
                          BATCH["segment_ids"], prefix=prefix)


@pytest.fixture(scope="module")
def original_checkpoint(tmp_path_factory):
    """A full original-layout pretraining checkpoint written by tf.compat.v1 variables and a Saver."""
    params = pretraining_params()
    directory = tmp_path_factory.mktemp("original")
    prefix = write_tf1_checkpoint(params, str(directory / "model.ckpt"), global_step=1234,
                                  with_adam_slots=True)
    return params, str(directory), prefix


def test_load_original_checkpoint_matches_numpy_forward(original_checkpoint):
    params, directory, prefix = original_checkpoint
    for path in (directory, prefix, prefix + ".index"):  # a directory or a prefix
        encoder = convbert_tf.load_original_checkpoint(path, CONFIG)
        outputs = run(encoder)
        for got, want in zip(outputs["hidden_states"], reference(params)):
            np.testing.assert_allclose(got.numpy(), want, atol=ATOL, rtol=0)


def test_original_checkpoints_are_told_from_this_projects(original_checkpoint, tmp_path):
    _, _, prefix = original_checkpoint
    assert is_original_checkpoint(prefix)
    tf2_prefix = convbert_tf.save_encoder(ConvBertEncoder(CONFIG), str(tmp_path / "tf2"))
    assert not is_original_checkpoint(tf2_prefix)


def test_load_original_pretraining_checkpoint_restores_generator_and_heads(original_checkpoint):
    params, directory, _ = original_checkpoint
    models = convbert_tf.load_original_pretraining_checkpoint(directory, CONFIG)
    assert models.global_step == 1234
    # The generator shares the discriminator's embedding tables (one variable, not a copy).
    assert models.generator.embeddings is models.discriminator.embeddings
    gen_config = ref.generator_config(CONFIG.to_dict(), GENERATOR_FRACTION)
    assert models.generator.config.hidden_size == gen_config["hidden_size"]
    gen_hidden = run(models.generator)["sequence_output"].numpy()
    want_gen = ref.np_encoder(params, gen_config, BATCH["input_ids"], BATCH["input_mask"],
                              BATCH["segment_ids"], prefix="generator")[-1]
    np.testing.assert_allclose(gen_hidden, want_gen, atol=ATOL, rtol=0)
    np.testing.assert_allclose(
        models.generator_head(tf.constant(want_gen, tf.float32)).numpy(),
        ref.np_generator_head(want_gen, params, params["electra/embeddings/word_embeddings"]), atol=1e-4, rtol=0)
    disc_hidden = reference(params)[-1]
    np.testing.assert_allclose(
        models.discriminator_head(tf.constant(disc_hidden, tf.float32)).numpy(),
        ref.np_discriminator_head(disc_hidden, params), atol=ATOL, rtol=0)


def test_save_original_checkpoint_writes_exact_names_and_round_trips(original_checkpoint, tmp_path):
    params, directory, _ = original_checkpoint
    models = convbert_tf.load_original_pretraining_checkpoint(directory, CONFIG)
    prefix = convbert_tf.save_original_checkpoint(
        models.discriminator, str(tmp_path / "out" / "model.ckpt-5"), global_step=5,
        generator=models.generator, generator_head=models.generator_head,
        discriminator_head=models.discriminator_head)
    written = dict(tf.train.list_variables(prefix))
    expected = {name: list(value.shape) for name, value in params.items()}
    expected["global_step"] = []
    assert written == expected
    reader = tf.train.load_checkpoint(prefix)
    for name, value in params.items():
        np.testing.assert_array_equal(reader.get_tensor(name), value, err_msg=name)
    assert reader.get_tensor("global_step") == 5
    assert tf.train.latest_checkpoint(str(tmp_path / "out")) == prefix
    assert not [f for f in os.listdir(tmp_path / "out") if io.is_temporary(f)]  # no temporary left
    # Saving again refuses to replace it unless asked, and leaves the files untouched.
    before = open(prefix + ".index", "rb").read()
    with pytest.raises(FileExistsError):
        convbert_tf.save_original_checkpoint(models.discriminator, prefix)
    assert open(prefix + ".index", "rb").read() == before
    reloaded = convbert_tf.load_original_checkpoint(prefix, CONFIG)
    np.testing.assert_array_equal(run(reloaded)["sequence_output"].numpy(),
                                  run(models.discriminator)["sequence_output"].numpy())


def test_fresh_model_round_trips_through_original_layout(tmp_path):
    encoder = ConvBertEncoder(CONFIG)
    generator, generator_head = build_generator(encoder, GENERATOR_FRACTION)
    head = build_discriminator_head(encoder)
    prefix = convbert_tf.save_original_checkpoint(encoder, str(tmp_path / "model.ckpt"),
                                                  generator=generator, generator_head=generator_head,
                                                  discriminator_head=head)
    models = convbert_tf.load_original_pretraining_checkpoint(prefix, CONFIG)
    for a, b in ((encoder, models.discriminator), (generator, models.generator)):
        np.testing.assert_array_equal(run(a)["sequence_output"].numpy(), run(b)["sequence_output"].numpy())
    hidden = tf.random.normal((1, 3, CONFIG.hidden_size))
    np.testing.assert_array_equal(head(hidden).numpy(), models.discriminator_head(hidden).numpy())


def test_checkpoint_of_another_size_is_a_clear_error(original_checkpoint):
    _, directory, prefix = original_checkpoint
    other = CONFIG.replace(linear_groups=1, hidden_size=64, intermediate_size=128)
    with pytest.raises(CheckpointError) as err:
        convbert_tf.load_original_checkpoint(directory, other)
    message = str(err.value)
    assert prefix in message
    assert "electra/encoder/layer_0/intermediate/dense/kernel" in message  # missing (stored as g_dense)
    assert "electra/embeddings_project/kernel: checkpoint [16, 32] vs model [16, 64]" in message


def test_missing_checkpoints_are_clear_errors(tmp_path):
    with pytest.raises(CheckpointError, match="no 'checkpoint' state file"):
        convbert_tf.load_original_checkpoint(str(tmp_path), CONFIG)
    (tmp_path / "model.ckpt-3.index").write_bytes(b"")
    with pytest.raises(CheckpointError, match="model.ckpt-3"):  # a hint at the prefix that is there
        convbert_tf.load_original_checkpoint(str(tmp_path), CONFIG)
    with pytest.raises(CheckpointError, match="expected .*nothing.index"):
        convbert_tf.load_original_checkpoint(str(tmp_path / "nothing"), CONFIG)


@pytest.mark.slow  # end to end: CI runs it in the slow tier
def test_convert_cli_both_directions(original_checkpoint, tmp_path):
    params, directory, _ = original_checkpoint
    config_path = str(tmp_path / "config.json")
    CONFIG.to_json_file(config_path)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    out = str(tmp_path / "tf2")
    # Both directions in one process (one TensorFlow import): to_tf2, then back to_original.
    code = f"""
import sys
from absl import flags
from convbert_tf import convert
flags.FLAGS(['convert'])
print(convert.convert('to_tf2', {directory!r}, {out!r}, {config_path!r}))
print(convert.convert('to_original', {out!r}, {str(tmp_path / 'back' / 'model.ckpt')!r}))
"""
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert tf.train.latest_checkpoint(out).endswith("ckpt-1234")
    back = tf.train.load_checkpoint(str(tmp_path / "back" / "model.ckpt"))
    for name in ref.original_param_shapes(CONFIG.to_dict()):
        np.testing.assert_array_equal(back.get_tensor(name), params[name], err_msg=name)
    # The CLI itself: a bad path is an error message and exit 1, no traceback.
    result = subprocess.run([sys.executable, "-m", "convbert_tf.convert", f"--input={tmp_path}/none",
                             "--config=small", f"--output={tmp_path}/x"], cwd=ROOT, env=env,
                            capture_output=True, text=True)
    assert result.returncode == 1
    assert "error: no checkpoint at" in result.stderr and "Traceback" not in result.stderr
