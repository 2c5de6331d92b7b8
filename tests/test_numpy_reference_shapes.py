"""Self-checks of the NumPy reference (tests/numpy_reference.py): the released sizes, variable names
and shapes, and the TF1 checkpoint writer (tests/tf1_checkpoint.py)."""
import json
import os

import numpy as np
import pytest

import numpy_reference as ref
from tiny_configs import reference_config

# The three released sizes, as BertConfig-style dicts.
_COMMON = dict(num_hidden_layers=12, vocab_size=30522, max_position_embeddings=512,
               type_vocab_size=2, conv_kernel_size=9, head_ratio=2, conv_type="sdconv",
               hidden_act="gelu")
SIZES = {
    "small": dict(_COMMON, hidden_size=256, num_attention_heads=4, intermediate_size=1024,
                  embedding_size=128, linear_groups=1),
    "medium-small": dict(_COMMON, hidden_size=384, num_attention_heads=8,
                         intermediate_size=1536, embedding_size=128, linear_groups=2),
    "base": dict(_COMMON, hidden_size=768, num_attention_heads=12, intermediate_size=3072,
                 embedding_size=None, linear_groups=1),
}
GENERATOR_FRACTION = {"small": 0.25, "medium-small": 0.25, "base": 1 / 3}

# name: (discriminator incl. embeddings, generator encoder excl. shared embeddings,
#        generator_predictions, whole pretraining graph params, whole graph tensors)
EXPECTED_COUNTS = {
    "small": (13_143_768, 770_988, 39_098, 14_019_903, 570),
    "medium-small": (17_475_888, 871_884, 43_194, 18_539_191, 570),
    "base": (105_680_520, 9_334_744, 229_434, 115_836_059, 568),
}

# ---------------------------------------------------------------------------------------
# Sizes and names
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("size", list(SIZES))
def test_released_parameter_counts(size):
    config, frac = SIZES[size], GENERATOR_FRACTION[size]
    disc, gen, gen_head, total, tensors = EXPECTED_COUNTS[size]
    disc_shapes = ref.original_param_shapes(config)
    gen_shapes = ref.generator_param_shapes(config, frac)
    gen_hidden = ref.generator_config(config, frac)["hidden_size"]
    heads = ref.pretraining_head_shapes(config, gen_hidden)
    gen_head_shapes = {n: s for n, s in heads.items() if n.startswith("generator_predictions/")}

    assert ref.param_count(disc_shapes) == disc
    assert ref.param_count(gen_shapes) == gen
    assert ref.param_count(gen_head_shapes) == gen_head
    whole = {**disc_shapes, **gen_shapes, **heads}
    assert len(whole) == len(disc_shapes) + len(gen_shapes) + len(heads)  # no name clash
    assert ref.param_count(whole) == total
    assert len(whole) == tensors
    assert not any(n.startswith("electra/embeddings/") for n in gen_shapes)


def test_released_shapes_called_out_in_the_reference():
    small_gen = ref.generator_param_shapes(SIZES["small"], 0.25)
    assert small_gen["generator/encoder/layer_0/attention/output/dense/kernel"] == (128, 64)
    assert small_gen["generator/embeddings_project/kernel"] == (128, 64)
    for size, shape in [("small", (128, 18)), ("medium-small", (192, 36)), ("base", (384, 54))]:
        shapes = ref.original_param_shapes(SIZES[size])
        assert shapes["electra/encoder/layer_11/attention/self/conv_attn_kernel/kernel"] == shape
    ms = ref.original_param_shapes(SIZES["medium-small"])
    assert ms["electra/encoder/layer_0/intermediate/g_dense/kernel"] == (2, 192, 768)
    assert ms["electra/encoder/layer_0/output/g_dense/kernel"] == (2, 768, 192)
    assert ms["electra/encoder/layer_0/output/g_dense/bias"] == (384,)
    assert not any("/dense/" in n and "/intermediate/" in n for n in ms)
    base = ref.original_param_shapes(SIZES["base"])
    assert "electra/embeddings_project/kernel" not in base
    assert ref.generator_param_shapes(SIZES["base"], 1 / 3)[
        "generator/embeddings_project/kernel"] == (768, 256)
    assert not any(n.endswith("pooler/dense/kernel") for n in base)


def test_generator_config_keeps_the_original_head_types():
    small = ref.generator_config(SIZES["small"], 0.25)
    assert small["num_attention_heads"] == 1 and isinstance(small["num_attention_heads"], int)
    ms = ref.generator_config(SIZES["medium-small"], 0.25)
    assert ms["num_attention_heads"] == 2.0 and isinstance(ms["num_attention_heads"], float)
    base = ref.generator_config(SIZES["base"], 1 / 3)
    assert (base["hidden_size"], base["num_attention_heads"], base["intermediate_size"]) == (
        256, 4.0, 1024)
    assert base["embedding_size"] == 768 and base["linear_groups"] == 1
    assert ref.generator_config(SIZES["small"], 0.25, layers_fraction=0.5)[
        "num_hidden_layers"] == 6


@pytest.mark.parametrize("args, expected", [
    ((4, 256, 2), (2, 64, 128)),
    ((8, 384, 2), (4, 48, 192)),
    ((12, 768, 2), (6, 64, 384)),
    ((1, 64, 2), (1, 64, 64)),       # small generator: fallback
    ((2.0, 96, 2), (1, 48, 48)),     # medium-small generator: float heads
    ((4.0, 256, 2), (2, 64, 128)),   # base generator
    ((4, 32, 1), (4, 8, 32)),
    ((4, 32, 4), (1, 8, 8)),
    ((4, 32, 8), (1, 8, 8)),         # fallback
])
def test_head_arithmetic(args, expected):
    assert ref.head_arithmetic(*args) == expected


def test_noconv_has_no_conv_variables_and_a_narrow_output_dense():
    shapes = ref.original_param_shapes(dict(SIZES["small"], conv_type="noconv"))
    assert not any("conv_attn" in n for n in shapes)
    assert shapes["electra/encoder/layer_0/attention/output/dense/kernel"] == (128, 256)


def test_repository_configs_match_the_released_counts():
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "configs")
    for size in SIZES:
        with open(os.path.join(root, f"{size}.json")) as f:
            config = json.load(f)
        assert ref.param_count(ref.original_param_shapes(config)) == EXPECTED_COUNTS[size][0]


# ---------------------------------------------------------------------------------------
# TF1 checkpoint writer
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("with_adam_slots, global_step", [(False, 0), (True, 7), (False, None)])
def test_tf1_checkpoint_round_trip(tmp_path, with_adam_slots, global_step):
    tf = pytest.importorskip("tensorflow")
    from tf1_checkpoint import write_tf1_checkpoint

    config = reference_config(num_hidden_layers=1)
    shapes = {**ref.original_param_shapes(config),
              **ref.pretraining_head_shapes(config, generator_hidden=16)}
    params = ref.random_original_params(shapes, seed=17)
    prefix = write_tf1_checkpoint(params, str(tmp_path / "model.ckpt"), global_step=global_step,
                                  with_adam_slots=with_adam_slots)
    assert tf.executing_eagerly()
    want_prefix = str(tmp_path / "model.ckpt") + ("" if global_step is None else f"-{global_step}")
    assert prefix == want_prefix
    assert tf.train.latest_checkpoint(str(tmp_path)) == prefix

    reader = tf.train.load_checkpoint(prefix)
    names = set(reader.get_variable_to_shape_map())
    expected = set(params)
    if global_step is not None:
        expected.add("global_step")
    if with_adam_slots:
        expected |= {f"{n}/{slot}" for n in params for slot in ("adam_m", "adam_v")}
    assert names == expected
    for name, value in params.items():
        stored = reader.get_tensor(name)
        assert stored.dtype == np.float32 and stored.shape == value.shape
        np.testing.assert_array_equal(stored, value)
        if with_adam_slots:
            np.testing.assert_array_equal(reader.get_tensor(f"{name}/adam_m"), -0.5 * value)
            np.testing.assert_array_equal(reader.get_tensor(f"{name}/adam_v"), value * value)
    if global_step is not None:
        step = reader.get_tensor("global_step")
        assert step.dtype == np.int64 and step.shape == () and step == global_step
