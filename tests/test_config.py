"""ConvBertConfig: presets, both JSON forms, strict validation, generator sizing."""

import dataclasses
import json

import pytest

from convbert_tf.config import (MODEL_SIZES, SIZES, ConfigError, ConvBertConfig, finetuning_size_hparams,
                                head_arithmetic, load_config, pretraining_size_hparams)
from convbert_tf.finetuning.hparams import resolve_finetuning_hparams
from convbert_tf.pretraining.hparams import resolve_hparams
from repo_paths import ROOT
from convbert_tf.models.electra import generator_config


def write_json(tmp_path, values, name="config.json"):
    path = tmp_path / name
    path.write_text(json.dumps(values))
    return str(path)


@pytest.mark.parametrize("size,hidden,heads,intermediate,embedding,groups", [
    ("small", 256, 4, 1024, 128, 1),
    ("medium-small", 384, 8, 1536, 128, 2),
    ("base", 768, 12, 3072, None, 1),
])
def test_presets_match_the_original_sizes_and_hparams_form(size, hidden, heads, intermediate, embedding, groups):
    config = ConvBertConfig.from_preset(size)
    assert (config.hidden_size, config.num_attention_heads, config.intermediate_size,
            config.embedding_size, config.linear_groups) == (hidden, heads, intermediate, embedding, groups)
    assert (config.num_hidden_layers, config.conv_kernel_size, config.head_ratio, config.vocab_size) == (12, 9, 2, 30522)
    # The original --hparams form resolves to the same config.
    assert ConvBertConfig.from_dict({"model_size": size}) == config


def test_presets_are_the_repository_configs_and_the_hparams_form():
    assert tuple(SIZES) == MODEL_SIZES
    for size in MODEL_SIZES:
        preset = ConvBertConfig.from_preset(size)
        assert preset == ConvBertConfig.from_json_file(f"{ROOT}/configs/{size}.json")
        assert preset == ConvBertConfig.from_dict({"model_size": size})


def test_per_size_hparams_are_the_originals_and_reach_both_runs():
    assert {size: pretraining_size_hparams(size) for size in MODEL_SIZES} == {
        "small": dict(learning_rate=3e-4, train_batch_size=128, eval_batch_size=128, embedding_size=128,
                      generator_hidden_size=0.25, linear_groups=1),
        "medium-small": dict(learning_rate=5e-4, train_batch_size=128, eval_batch_size=128,
                             embedding_size=128, generator_hidden_size=0.25, linear_groups=2),
        "base": dict(learning_rate=2e-4, train_batch_size=256, eval_batch_size=256, embedding_size=None,
                     generator_hidden_size=1 / 3, linear_groups=1)}
    assert {size: finetuning_size_hparams(size) for size in MODEL_SIZES} == {
        "small": dict(learning_rate=3e-4, embedding_size=128, linear_groups=1),
        "medium-small": dict(learning_rate=3e-4, embedding_size=128, linear_groups=2),
        "base": dict(learning_rate=1e-4, embedding_size=None, linear_groups=1)}
    for size in MODEL_SIZES:
        pretraining = resolve_hparams({"model_size": size})
        assert (pretraining.learning_rate, pretraining.train_batch_size, pretraining.generator_hidden_size) == (
            SIZES[size].pretrain_learning_rate, SIZES[size].pretrain_batch_size, SIZES[size].generator_hidden_size)
        assert pretraining.model_config() == ConvBertConfig.from_preset(size)
        finetuning = resolve_finetuning_hparams({"model_size": size, "task_names": ["cola"]})
        assert finetuning.learning_rate == SIZES[size].finetune_learning_rate
        assert finetuning.model_config() == ConvBertConfig.from_preset(size)
    for resolve in (resolve_hparams, resolve_finetuning_hparams):
        with pytest.raises(ConfigError, match=r"model_size 'large' is not one of \['base', 'medium-small', 'small'\]"):
            resolve({"model_size": "large"})


def test_hparams_form_applies_overrides_like_get_bert_config(tmp_path):
    path = write_json(tmp_path, {"model_size": "small", "learning_rate": 1e-4,
                                 "model_hparam_overrides": {"hidden_size": 128, "num_hidden_layers": 3},
                                 "linear_groups": 2})
    config = ConvBertConfig.from_json_file(path)
    # Heads and intermediate follow the overridden hidden size (128 // 64, 4 * 128).
    assert (config.hidden_size, config.num_hidden_layers, config.num_attention_heads,
            config.intermediate_size, config.linear_groups, config.embedding_size) == (128, 3, 2, 512, 2, 128)
    # The default model_size is medium-small.
    assert ConvBertConfig.from_dict({"debug": False}).hidden_size == 384


def test_bert_config_form_round_trips(tmp_path):
    config = ConvBertConfig(vocab_size=99, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                            intermediate_size=128, embedding_size=32, linear_groups=2, conv_kernel_size=3)
    path = str(tmp_path / "c.json")
    config.to_json_file(path)
    assert ConvBertConfig.from_json_file(path) == config
    assert load_config(path) == config


@pytest.mark.parametrize("values,words", [
    ({"hidden_size": 64, "num_hidden_layers": 2, "hiden_act": "gelu"}, ["hiden_act"]),
    ({"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "conv_kernel_size": 4},
     ["conv_kernel_size", "4", "odd"]),
    ({"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 5}, ["hidden_size", "64", "5"]),
    ({"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 8, "head_ratio": 3},
     ["num_attention_heads", "8", "head_ratio", "3"]),
    ({"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 100,
      "linear_groups": 3}, ["linear_groups", "3"]),
    ({"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "hidden_act": "swish"}, ["hidden_act"]),
    ({"model_size": "small", "lerning_rate": 1}, ["lerning_rate"]),
    ({"model_size": "large"}, ["large"]),
    ({"model_size": "small", "model_hparam_overrides": {"hidden_sise": 3}}, ["hidden_sise"]),
])
def test_bad_configs_name_the_key_and_numbers(tmp_path, values, words):
    path = write_json(tmp_path, values)
    with pytest.raises(ConfigError) as err:
        ConvBertConfig.from_json_file(path)
    message = str(err.value)
    assert path in message
    for word in words:
        assert word in message


def test_missing_and_malformed_files_are_named(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        ConvBertConfig.from_json_file(str(tmp_path / "nope.json"))
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        ConvBertConfig.from_json_file(str(bad))
    with pytest.raises(ConfigError, match="unknown preset"):
        ConvBertConfig.from_preset("huge")


def test_head_arithmetic_and_fallback():
    assert dataclasses.astuple(head_arithmetic(12, 768, 2)) == (6, 64, 384, 2)
    assert dataclasses.astuple(head_arithmetic(8, 384, 4)) == (2, 48, 96, 4)
    assert dataclasses.astuple(head_arithmetic(4, 256, 1)) == (4, 64, 256, 1)
    # int(1 / 2) == 0: one head of each kind, ratio reset to N (the small generator).
    assert dataclasses.astuple(head_arithmetic(1, 64, 2)) == (1, 64, 64, 1)


@pytest.mark.parametrize("size,fraction,hidden,heads,intermediate", [
    ("small", 0.25, 64, 1, 256),
    ("medium-small", 0.25, 96, 2, 384),
    ("base", 1 / 3, 256, 4, 1024),
])
def test_generator_config_follows_get_generator_config(size, fraction, hidden, heads, intermediate):
    disc = ConvBertConfig.from_preset(size)
    gen = generator_config(disc, fraction)
    assert (gen.hidden_size, gen.num_attention_heads, gen.intermediate_size, gen.num_hidden_layers) == (
        hidden, heads, intermediate, 12)
    assert gen.resolved_embedding_size == disc.resolved_embedding_size
    assert (gen.linear_groups, gen.conv_kernel_size, gen.head_ratio) == (
        disc.linear_groups, disc.conv_kernel_size, disc.head_ratio)


def test_onednn_is_turned_on_for_x86_cpus_unless_the_user_chose():
    from convbert_tf.cpu_defaults import set_cpu_defaults
    environ = {}
    set_cpu_defaults(environ, "x86_64")
    assert environ == {"TF_ENABLE_ONEDNN_OPTS": "1"}
    environ = {"TF_ENABLE_ONEDNN_OPTS": "0"}
    set_cpu_defaults(environ, "AMD64")
    assert environ == {"TF_ENABLE_ONEDNN_OPTS": "0"}
    environ = {}
    set_cpu_defaults(environ, "aarch64")
    assert environ == {}


def test_the_package_sets_onednn_before_tensorflow_reads_it():
    """conftest imports convbert_tf first, as the entry points do: TensorFlow then runs what the
    variable says."""
    import os
    import platform
    from tensorflow.python.util import _pywrap_util_port
    if platform.machine().lower() not in ("x86_64", "amd64"):
        pytest.skip("oneDNN is set on x86 CPUs only")
    assert _pywrap_util_port.IsMklEnabled() == (os.environ["TF_ENABLE_ONEDNN_OPTS"] == "1")
