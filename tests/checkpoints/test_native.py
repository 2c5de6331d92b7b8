"""This project's TF2 checkpoints (checkpoints/native.py) and the Keras file format."""

import os

import keras
import numpy as np
import pytest

import convbert_tf
from checkpoint_cases import CONFIG, run
from convbert_tf import CheckpointError, ConvBertEncoder, io
from convbert_tf.checkpoints import is_original_checkpoint


def test_tf2_checkpoint_round_trip_and_config_mismatch(tmp_path):
    encoder = ConvBertEncoder(CONFIG)
    prefix = convbert_tf.save_encoder(encoder, str(tmp_path / "tf2"), step=9)
    assert prefix.endswith("ckpt-9")
    loaded = convbert_tf.load_encoder(str(tmp_path / "tf2"))
    assert loaded.config == CONFIG
    np.testing.assert_array_equal(run(loaded)["sequence_output"].numpy(), run(encoder)["sequence_output"].numpy())
    with pytest.raises(CheckpointError, match="linear_groups: checkpoint 2 vs given 1"):
        convbert_tf.load_encoder(str(tmp_path / "tf2"), CONFIG.replace(linear_groups=1))
    with pytest.raises(CheckpointError, match="load_encoder"):
        convbert_tf.load_original_checkpoint(str(tmp_path / "tf2"), CONFIG)


def test_keras_file_round_trip(tmp_path):
    encoder = ConvBertEncoder(CONFIG)
    path = str(tmp_path / "encoder.keras")
    encoder.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded, ConvBertEncoder) and loaded.config == CONFIG
    np.testing.assert_array_equal(run(loaded)["sequence_output"].numpy(), run(encoder)["sequence_output"].numpy())


def test_save_encoder_leaves_no_temporary_and_replaces_config(tmp_path):
    directory = tmp_path / "tf2"
    convbert_tf.save_encoder(ConvBertEncoder(CONFIG), str(directory), step=1)
    other = CONFIG.replace(linear_groups=1)
    prefix = convbert_tf.save_encoder(ConvBertEncoder(other), str(directory), step=2)
    assert not [f for f in os.listdir(directory) if io.is_temporary(f)]
    assert open(directory / "checkpoint").read().startswith('model_checkpoint_path: "ckpt-2"')
    assert convbert_tf.load_encoder(str(directory)).config == other
    assert not is_original_checkpoint(prefix)
