"""Self-checks of the NumPy reference (tests/numpy_reference.py): its math against second
formulations (banded span convolution, per-head and per-token loops, scalar formulas)."""
import math

import numpy as np
import pytest

import numpy_reference as ref
from tiny_configs import reference_config, reference_inputs


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
    config = reference_config(conv_kernel_size=k, head_ratio=head_ratio)
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
    config = reference_config(conv_kernel_size=9)
    p = ref.random_original_params(ref.layer_param_shapes(config), seed=1)
    x = np.random.default_rng(0).normal(size=(2, 12, 32))
    out_a = ref.np_span_conv(x, x[..., :16], p, config)
    out_b = ref.np_span_conv(x, x[..., 16:], p, config)  # a different query
    assert np.abs(out_a - out_b).max() > 0.05


def test_span_conv_refuses_even_kernels():
    config = reference_config(conv_kernel_size=4)
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
    config = reference_config(conv_kernel_size=k)
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
    config = reference_config(head_ratio=1)  # N' = 4, d = 8, A = 32, output dense [64, 32]
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
    config_nc = reference_config(head_ratio=1, conv_type="noconv")
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
    config = reference_config(head_ratio=head_ratio, linear_groups=linear_groups)
    shapes = ref.original_param_shapes(config)
    assert shapes["electra/encoder/layer_1/attention/output/dense/kernel"] == (2 * bottleneck, 32)
    assert shapes["electra/encoder/layer_1/attention/self/conv_attn_point/kernel"] == (
        32, bottleneck)
    params = ref.random_original_params(shapes, seed=head_ratio)
    ids, mask, segments = reference_inputs(np.random.default_rng(8), 2, 9, [9, 6], 40)
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
    config = reference_config(**overrides)
    shapes = ref.original_param_shapes(config)
    params = ref.random_original_params(shapes, seed=9)
    ids, mask, segments = reference_inputs(np.random.default_rng(10), 2, 8, [8, 5], 40)
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
        config = reference_config(embedding_size=embedding_size)
        shapes = ref.original_param_shapes(config)
        assert ("electra/embeddings_project/kernel" in shapes) == (embedding_size is not None)
        params = ref.random_original_params(shapes, seed=11)
        ids, mask, segments = reference_inputs(np.random.default_rng(12), 2, 7, [7, 4], 40)
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
    config = reference_config()
    gen_config = ref.generator_config(config, 0.25)  # H 8, N 1 -> fallback N' 1, d 8, A 8
    shapes = {**ref.original_param_shapes(config),
              **ref.generator_param_shapes(config, 0.25)}
    assert shapes["generator/encoder/layer_0/attention/output/dense/kernel"] == (16, 8)
    params = ref.random_original_params(shapes, seed=13)
    ids, mask, segments = reference_inputs(np.random.default_rng(14), 2, 6, [6, 6], 40)
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
    config = reference_config()
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
    shapes = ref.original_param_shapes(reference_config())
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
