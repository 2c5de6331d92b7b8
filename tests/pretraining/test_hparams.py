"""Pretraining hparams: the original's resolution of sizes and defaults, and clear errors."""

import json
import os

import pytest

from convbert_tf import ConvBertConfig
from convbert_tf.config import ConfigError
from convbert_tf.pretraining.hparams import resolve_hparams


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
