"""Self-checks of the NumPy reference (tests/numpy_reference.py) and the TF1 checkpoint writer."""
import json
import math
import os

import numpy as np
import pytest

from tests import numpy_reference as ref

# The three released sizes (the original's configure_pretraining.py), as BertConfig-style dicts.
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

# Tiny config for the numeric tests.
TINY = dict(vocab_size=40, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
            intermediate_size=64, max_position_embeddings=16, type_vocab_size=2,
            embedding_size=16, head_ratio=2, conv_kernel_size=3, linear_groups=1,
            conv_type="sdconv", hidden_act="gelu")


def _tiny(**overrides):
    return dict(TINY, **overrides)


def _inputs(rng, batch, length, real_lengths, vocab):
    """Random ids/segments with [PAD]=0 beyond each real length; both segment ids occur."""
    ids = rng.integers(1, vocab, size=(batch, length))
    mask = (np.arange(length)[None] < np.asarray(real_lengths)[:, None]).astype(np.int32)
    segments = (np.arange(length)[None] >= np.asarray(real_lengths)[:, None] // 2).astype(np.int32)
    return ids * mask, mask, segments * mask


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
# Span-based dynamic convolution against a second formulation
# ---------------------------------------------------------------------------------------

def _span_conv_banded(x, query, p, n_heads, head_size, k, keep=None):
    """Second formulation: np.convolve for the depthwise step, per-head banded [T, T] α."""
    b, t, h = x.shape
    c = (k - 1) // 2
    if keep is not None:
        x = x * keep[:, :, None]
    w_dw = p["attention/self/conv_attn_key/depthwise_kernel"].astype(np.float64)
    dw = np.empty_like(x)
    for bi in range(b):
        for j in range(h):
            # np.convolve flips its kernel; flip it back to get a cross-correlation.
            full = np.convolve(x[bi, :, j], w_dw[::-1, j, 0], mode="full")  # [T + K - 1]
            dw[bi, :, j] = full[c:c + t]
    span_key = np.einsum("bth,ha->bta", dw, p["attention/self/conv_attn_key/pointwise_kernel"][0])
    span_key = span_key + p["attention/self/conv_attn_key/bias"]
    logits = np.einsum("bta,ak->btk", span_key * query,
                       p["attention/self/conv_attn_kernel/kernel"].astype(np.float64))
    logits = (logits + p["attention/self/conv_attn_kernel/bias"]).reshape(b, t, n_heads, k)
    alpha = np.exp(logits - logits.max(-1, keepdims=True))
    alpha = alpha / alpha.sum(-1, keepdims=True)  # [B, T, N', K]
    values = x @ p["attention/self/conv_attn_point/kernel"].astype(np.float64) \
        + p["attention/self/conv_attn_point/bias"]  # [B, T, A]
    if keep is not None:
        values = values * keep[:, :, None]
    values = values.reshape(b, t, n_heads, head_size)
    offset = np.arange(t)[None, :] - np.arange(t)[:, None] + c  # [T(query), T(source)]
    inside = (offset >= 0) & (offset < k)
    band = np.where(inside[None, :, None, :],
                    np.take_along_axis(alpha, np.clip(offset, 0, k - 1)[None, :, None, :]
                                       .repeat(b, 0).repeat(n_heads, 2), axis=3),
                    0.0)  # [B, T, N', T]: band[b, t, n, s] = α[b, t, n, s - t + c]
    out = np.einsum("btns,bsnd->btnd", band, values)
    return out.reshape(b, t, n_heads * head_size)


@pytest.mark.parametrize("k, t", [(1, 6), (3, 12), (9, 12), (9, 5), (9, 1)])
@pytest.mark.parametrize("head_ratio", [1, 2])
def test_span_conv_matches_banded_formulation(k, t, head_ratio):
    config = _tiny(conv_kernel_size=k, head_ratio=head_ratio)
    n_heads, head_size, bottleneck = ref.head_arithmetic(4, 32, head_ratio)
    p = ref.random_original_params(ref.layer_param_shapes(config), seed=k * 100 + t)
    rng = np.random.default_rng(t)
    x = rng.normal(size=(2, t, 32))
    query = rng.normal(size=(2, t, bottleneck))
    got = ref.np_span_conv(x, query, p, config)
    assert got.shape == (2, t, bottleneck)
    want = _span_conv_banded(x, query, p, n_heads, head_size, k)
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
    assert np.abs(got).max() > 0.1

    mask = np.ones((2, t))
    mask[1, max(1, t - 3):] = 0
    got_masked = ref.np_span_conv(x, query, p, config, input_mask=mask, mask_padding=True)
    want_masked = _span_conv_banded(x, query, p, n_heads, head_size, k, keep=mask)
    np.testing.assert_allclose(got_masked, want_masked, rtol=1e-10, atol=1e-12)


def test_span_conv_kernel_is_far_from_uniform_with_the_random_scales():
    # Otherwise the comparisons above could not see a wrong window index.
    config = _tiny(conv_kernel_size=9)
    p = ref.random_original_params(ref.layer_param_shapes(config), seed=1)
    x = np.random.default_rng(0).normal(size=(2, 12, 32))
    out_a = ref.np_span_conv(x, x[..., :16], p, config)
    out_b = ref.np_span_conv(x, x[..., 16:], p, config)  # a different query
    assert np.abs(out_a - out_b).max() > 0.05


def test_span_conv_refuses_even_kernels():
    config = _tiny(conv_kernel_size=4)
    p = ref.random_original_params(ref.layer_param_shapes(config), seed=0)
    with pytest.raises(ValueError, match="odd"):
        ref.np_span_conv(np.zeros((1, 5, 32)), np.zeros((1, 5, 16)), p, config)


# ---------------------------------------------------------------------------------------
# Padding: the original's leak and the documented fix
# ---------------------------------------------------------------------------------------

def _padded_pair(config, real, padded, seed):
    rng = np.random.default_rng(seed)
    ids = rng.integers(1, config["vocab_size"], size=(2, real))
    segments = np.zeros((2, real), np.int32)
    segments[:, real // 2:] = 1
    short = (ids, np.ones((2, real), np.int32), segments)
    pad = padded - real
    long = (np.pad(ids, ((0, 0), (0, pad))),
            np.pad(short[1], ((0, 0), (0, pad))),
            np.pad(segments, ((0, 0), (0, pad))))
    return short, long


@pytest.mark.parametrize("k", [3, 5])
def test_original_conv_heads_leak_padding_into_the_last_c_tokens(k):
    config = _tiny(conv_kernel_size=k)
    c = (k - 1) // 2
    params = ref.random_original_params(ref.original_param_shapes(config), seed=3)
    real, padded = 7, 12
    short, long = _padded_pair(config, real, padded, seed=4)
    layer0 = ref.get_layer_params(params, "electra", 0)

    # At the conv output itself: exactly the last c real tokens change.
    x_short = ref.np_embeddings(params, config, short[0], short[2])
    x_long = ref.np_embeddings(params, config, long[0], long[2])
    query_short = ref.np_dense(x_short, layer0["attention/self/query/kernel"],
                               layer0["attention/self/query/bias"])
    query_long = ref.np_dense(x_long, layer0["attention/self/query/kernel"],
                              layer0["attention/self/query/bias"])
    conv_short = ref.np_span_conv(x_short, query_short, layer0, config)
    conv_long = ref.np_span_conv(x_long, query_long, layer0, config)[:, :real]
    np.testing.assert_allclose(conv_long[:, :real - c], conv_short[:, :real - c],
                               rtol=0, atol=1e-12)
    leak = np.abs(conv_long - conv_short).max(axis=(0, 2))  # [T_real]
    assert (leak[real - c:] > 1e-3).all(), leak

    # Through the first layer: same split (attention masks the keys exactly).
    states_short = ref.np_encoder(params, config, *short)
    states_long = ref.np_encoder(params, config, *long)
    np.testing.assert_allclose(states_long[1][:, :real - c], states_short[1][:, :real - c],
                               rtol=0, atol=1e-9)
    assert (np.abs(states_long[1][:, real - c:real] - states_short[1][:, real - c:])
            .max(axis=(0, 2)) > 1e-3).all()
    # After the second layer the leak has spread through attention to every real token.
    assert np.abs(states_long[-1][:, :real] - states_short[-1]).max() > 1e-3

    # mask_padding=True removes the dependence on padding entirely.
    fixed_short = ref.np_encoder(params, config, *short, mask_padding=True)
    fixed_long = ref.np_encoder(params, config, *long, mask_padding=True)
    for s_short, s_long in zip(fixed_short, fixed_long):
        np.testing.assert_allclose(s_long[:, :real], s_short, rtol=0, atol=1e-6)
    # On an unpadded batch the fix changes nothing.
    for s_orig, s_fixed in zip(states_short, fixed_short):
        np.testing.assert_allclose(s_fixed, s_orig, rtol=0, atol=1e-12)


# ---------------------------------------------------------------------------------------
# Mixed attention, layers, encoder
# ---------------------------------------------------------------------------------------

def test_mixed_attention_matches_per_head_loops():
    config = _tiny(head_ratio=1)  # N' = 4, d = 8, A = 32, output dense [64, 32]
    n_heads, d, a = 4, 8, 32
    p = ref.random_original_params(ref.layer_param_shapes(config), seed=5)
    rng = np.random.default_rng(6)
    x = rng.normal(size=(2, 6, 32))
    mask = np.array([[1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0]])
    q = x @ p["attention/self/query/kernel"] + p["attention/self/query/bias"]
    kk = x @ p["attention/self/key/kernel"] + p["attention/self/key/bias"]
    v = x @ p["attention/self/value/kernel"] + p["attention/self/value/bias"]
    attended = np.zeros((2, 6, a))
    for b in range(2):
        for n in range(n_heads):
            cols = slice(n * d, (n + 1) * d)
            for t in range(6):
                scores = np.array([q[b, t, cols] @ kk[b, s, cols] / math.sqrt(d)
                                   + (0.0 if mask[b, s] else -10000.0) for s in range(6)])
                probs = np.exp(scores - scores.max())
                probs /= probs.sum()
                attended[b, t, cols] = sum(probs[s] * v[b, s, cols] for s in range(6))
    conv = _span_conv_banded(x, q, p, n_heads, d, 3)
    want = np.concatenate([attended, conv], -1) @ p["attention/output/dense/kernel"] \
        + p["attention/output/dense/bias"]
    got = ref.np_mixed_attention(x, mask, p, config)
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-10)

    # noconv: only the attention heads, output dense [A, H].
    config_nc = _tiny(head_ratio=1, conv_type="noconv")
    p_nc = {n: w for n, w in p.items() if "conv_attn" not in n}
    p_nc["attention/output/dense/kernel"] = p["attention/output/dense/kernel"][:a]
    got_nc = ref.np_mixed_attention(x, mask, p_nc, config_nc)
    want_nc = attended @ p_nc["attention/output/dense/kernel"] + p["attention/output/dense/bias"]
    np.testing.assert_allclose(got_nc, want_nc, rtol=1e-9, atol=1e-10)


def _block_diagonal(kernel):
    groups, n_in, n_out = kernel.shape
    full = np.zeros((groups * n_in, groups * n_out), kernel.dtype)
    for g in range(groups):
        full[g * n_in:(g + 1) * n_in, g * n_out:(g + 1) * n_out] = kernel[g]
    return full


def test_grouped_linear_is_a_block_diagonal_dense():
    rng = np.random.default_rng(7)
    kernel = rng.normal(size=(4, 3, 5))
    bias = rng.normal(size=20)
    x = rng.normal(size=(2, 3, 12))
    np.testing.assert_allclose(ref.np_grouped_linear(x, kernel, bias),
                               x @ _block_diagonal(kernel) + bias, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("linear_groups", [1, 2])
@pytest.mark.parametrize("head_ratio, bottleneck", [(1, 32), (2, 16), (4, 8), (8, 8)])
def test_encoder_runs_for_head_ratios_and_groups(head_ratio, bottleneck, linear_groups):
    config = _tiny(head_ratio=head_ratio, linear_groups=linear_groups)
    shapes = ref.original_param_shapes(config)
    assert shapes["electra/encoder/layer_1/attention/output/dense/kernel"] == (2 * bottleneck, 32)
    assert shapes["electra/encoder/layer_1/attention/self/conv_attn_point/kernel"] == (
        32, bottleneck)
    params = ref.random_original_params(shapes, seed=head_ratio)
    ids, mask, segments = _inputs(np.random.default_rng(8), 2, 9, [9, 6], 40)
    states = ref.np_encoder(params, config, ids, mask, segments)
    assert len(states) == 3
    for state in states:
        assert state.shape == (2, 9, 32) and np.isfinite(state).all()

    if linear_groups == 2:
        # Same weights written as block-diagonal `dense` kernels with G = 1: same outputs.
        dense_params = {}
        for name, value in params.items():
            if "/g_dense/" in name:
                name = name.replace("/g_dense/", "/dense/")
                value = _block_diagonal(value) if name.endswith("kernel") else value
            dense_params[name] = value
        dense_config = dict(config, linear_groups=1)
        assert {n: v.shape for n, v in dense_params.items()} == \
            ref.original_param_shapes(dense_config)
        dense_states = ref.np_encoder(dense_params, dense_config, ids, mask, segments)
        for got, want in zip(states, dense_states):
            np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("overrides", [
    {},
    {"linear_groups": 2, "hidden_act": "relu"},
    {"conv_type": "noconv", "embedding_size": None},
])
def test_encoder_uses_every_listed_variable(overrides):
    config = _tiny(**overrides)
    shapes = ref.original_param_shapes(config)
    params = ref.random_original_params(shapes, seed=9)
    ids, mask, segments = _inputs(np.random.default_rng(10), 2, 8, [8, 5], 40)
    base = ref.np_encoder(params, config, ids, mask, segments)[-1]
    rng = np.random.default_rng(11)
    for name in shapes:
        if name.endswith("attention/self/key/bias"):
            # q·(k + b) shifts all of a query's scores by the same q·b, which the softmax
            # cancels: the key bias provably has no effect on any output.
            continue
        bumped = dict(params)
        # Random, not constant: a constant shift of an embedding table is removed by the LN.
        bumped[name] = params[name] + rng.normal(0.0, 0.3, shapes[name]).astype(np.float32)
        out = ref.np_encoder(bumped, config, ids, mask, segments)[-1]
        assert np.abs(out - base).max() > 1e-6, f"{name} does not affect the output"


def test_embeddings_match_a_per_token_loop():
    for embedding_size in (16, None):
        config = _tiny(embedding_size=embedding_size)
        shapes = ref.original_param_shapes(config)
        assert ("electra/embeddings_project/kernel" in shapes) == (embedding_size is not None)
        params = ref.random_original_params(shapes, seed=11)
        ids, mask, segments = _inputs(np.random.default_rng(12), 2, 7, [7, 4], 40)
        got = ref.np_embeddings(params, config, ids, segments)
        assert got.shape == (2, 7, 32)
        for b in range(2):
            for t in range(7):
                e = (params["electra/embeddings/word_embeddings"][ids[b, t]].astype(np.float64)
                     + params["electra/embeddings/token_type_embeddings"][segments[b, t]]
                     + params["electra/embeddings/position_embeddings"][t])
                e = (e - e.mean()) / math.sqrt(e.var() + 1e-12)
                e = e * params["electra/embeddings/LayerNorm/gamma"] \
                    + params["electra/embeddings/LayerNorm/beta"]
                if embedding_size is not None:
                    e = e @ params["electra/embeddings_project/kernel"] \
                        + params["electra/embeddings_project/bias"]
                np.testing.assert_allclose(got[b, t], e, rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match="max_position_embeddings"):
        ref.np_embeddings(params, config, np.zeros((1, 17), int), np.zeros((1, 17), int))


def test_generator_uses_its_own_projection_and_the_shared_tables():
    config = _tiny()
    gen_config = ref.generator_config(config, 0.25)  # H 8, N 1 -> fallback N' 1, d 8, A 8
    shapes = {**ref.original_param_shapes(config),
              **ref.generator_param_shapes(config, 0.25)}
    assert shapes["generator/encoder/layer_0/attention/output/dense/kernel"] == (16, 8)
    params = ref.random_original_params(shapes, seed=13)
    ids, mask, segments = _inputs(np.random.default_rng(14), 2, 6, [6, 6], 40)
    states = ref.np_encoder(params, gen_config, ids, mask, segments, prefix="generator")
    assert [s.shape for s in states] == [(2, 6, 8)] * 3
    want0 = ref.np_dense(ref.np_layer_norm(
        params["electra/embeddings/word_embeddings"][ids].astype(np.float64)
        + params["electra/embeddings/token_type_embeddings"][segments]
        + params["electra/embeddings/position_embeddings"][:6],
        params["electra/embeddings/LayerNorm/gamma"], params["electra/embeddings/LayerNorm/beta"]),
        params["generator/embeddings_project/kernel"], params["generator/embeddings_project/bias"])
    np.testing.assert_allclose(states[0], want0, rtol=1e-12, atol=1e-12)


def test_pretraining_heads_match_scalar_formulas():
    config = _tiny()
    shapes = ref.pretraining_head_shapes(config, generator_hidden=16)
    params = ref.random_original_params(shapes, seed=15)
    words = ref.random_original_params(
        {"electra/embeddings/word_embeddings": (40, 16)}, seed=15)[
        "electra/embeddings/word_embeddings"]
    rng = np.random.default_rng(16)
    gen_hidden = rng.normal(size=(2, 3, 16))
    disc_hidden = rng.normal(size=(2, 5, 32))
    gen_logits = ref.np_generator_head(gen_hidden, params, words)
    disc_logits = ref.np_discriminator_head(disc_hidden, params)
    assert gen_logits.shape == (2, 3, 40) and disc_logits.shape == (2, 5)

    def gelu(z):
        return z * 0.5 * (1 + math.erf(z / math.sqrt(2)))

    for b, t in [(0, 0), (1, 2)]:
        u = np.array([gelu(z) for z in gen_hidden[b, t] @ params[
            "generator_predictions/dense/kernel"] + params["generator_predictions/dense/bias"]])
        u = (u - u.mean()) / math.sqrt(u.var() + 1e-12)
        u = u * params["generator_predictions/LayerNorm/gamma"] \
            + params["generator_predictions/LayerNorm/beta"]
        want = np.array([u @ words[w] for w in range(40)]) + params[
            "generator_predictions/output_bias"]
        np.testing.assert_allclose(gen_logits[b, t], want, rtol=1e-6, atol=1e-6)
    for b, t in [(0, 4), (1, 1)]:
        h = np.array([gelu(z) for z in disc_hidden[b, t] @ params[
            "discriminator_predictions/dense/kernel"] + params[
            "discriminator_predictions/dense/bias"]])
        want = h @ params["discriminator_predictions/dense_1/kernel"][:, 0] + params[
            "discriminator_predictions/dense_1/bias"][0]
        np.testing.assert_allclose(disc_logits[b, t], want, rtol=1e-6, atol=1e-6)


def test_elementary_functions():
    x = np.array([-3.0, -1.0, 0.0, 0.5, 2.0])
    np.testing.assert_allclose(ref.np_gelu(x), [x_ * 0.5 * (1 + math.erf(x_ / math.sqrt(2)))
                                                for x_ in x], rtol=1e-15)
    np.testing.assert_allclose(ref.np_softmax(np.array([1000.0, 1000.0, -np.inf])),
                               [0.5, 0.5, 0.0])
    y = ref.np_layer_norm(np.array([[1.0, 2.0, 3.0, 6.0]]), np.ones(4), np.zeros(4))
    np.testing.assert_allclose(y.mean(), 0.0, atol=1e-12)
    np.testing.assert_allclose(y.var(), 1.0, atol=1e-9)


def test_random_params_are_nontrivial_and_order_independent():
    shapes = ref.original_param_shapes(TINY)
    params = ref.random_original_params(shapes, seed=0)
    assert all(v.dtype == np.float32 and v.shape == shapes[n] for n, v in params.items())
    for name, value in params.items():
        assert np.abs(value).min() < np.abs(value).max(), name  # not a constant
        if name.endswith("gamma"):
            assert 0.5 <= value.min() and value.max() <= 1.5 and value.std() > 0.05
        elif name.endswith(("bias", "beta")):
            assert value.std() > 0.05, name
    name = "electra/encoder/layer_1/attention/self/key/kernel"
    alone = ref.random_original_params({name: shapes[name]}, seed=0)
    np.testing.assert_array_equal(alone[name], params[name])
    assert not np.array_equal(ref.random_original_params(shapes, seed=1)[name], params[name])


# ---------------------------------------------------------------------------------------
# TF1 checkpoint writer
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("with_adam_slots, global_step", [(False, 0), (True, 7), (False, None)])
def test_tf1_checkpoint_round_trip(tmp_path, with_adam_slots, global_step):
    tf = pytest.importorskip("tensorflow")
    from tests.tf1_checkpoint import write_tf1_checkpoint

    config = _tiny(num_hidden_layers=1)
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
