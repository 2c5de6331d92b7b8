"""Independent NumPy reference of the original TF1.15 ConvBERT computation, for tests.

Written from the equations of `/work/shared/reference/original_release.md` (sections 1-3)
only, never from the Keras model under `convbert_tf/`, so the two can be checked against
each other. Everything is computed in float64 and returned as float64; dropout is the
identity (inference). Parameters are plain dicts keyed by the original TF1 checkpoint
variable names (`electra/encoder/layer_3/attention/self/conv_attn_key/depthwise_kernel`).

Dimension legend (shape comments use these letters):

  B   batch size
  T   sequence length
  H   hidden size of the encoder (`hidden_size`)
  E   embedding width (`embedding_size`; None means H)
  N'  heads per branch: N' self-attention heads and N' conv heads
  d   head size, H // N with N the *config* `num_attention_heads`
  A   bottleneck width, N'·d (= H / head_ratio when divisible)
  K   conv kernel size (`conv_kernel_size`, odd); c = (K - 1) / 2
  G   groups of the grouped linear (`linear_groups`)
  I   intermediate (feed-forward) size
  V   vocabulary size
  P   masked positions fed to the generator head
"""
import math
import zlib

import numpy as np

# BertConfig defaults for the standard fields (the original's `modeling.BertConfig.__init__`). `vocab_size` and the four ConvBERT
# fields have no default: the original raises AttributeError without them.
_BERT_DEFAULTS = {
    "hidden_size": 768,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "intermediate_size": 3072,
    "hidden_act": "gelu",
    "max_position_embeddings": 512,
    "type_vocab_size": 2,
    "embedding_size": None,
}
_REQUIRED = ("vocab_size", "head_ratio", "conv_kernel_size", "linear_groups", "conv_type")

_ATTENTION_MASK_VALUE = -10000.0  # additive bias on padded keys, (1 - mask) * -10000
_LAYER_NORM_EPS = 1e-12  # hard-coded in tf.contrib.layers.layer_norm


def _field(config, key):
    if key in config:
        return config[key]
    if key in _BERT_DEFAULTS:
        return _BERT_DEFAULTS[key]
    raise KeyError(
        f"config has no {key!r}; the original BertModel needs it (it has no default). "
        f"Keys given: {sorted(config)}")


def embedding_width(config):
    """E: `embedding_size`, or `hidden_size` when it is None."""
    e = _field(config, "embedding_size")
    return int(_field(config, "hidden_size")) if e is None else int(e)


def head_arithmetic(num_attention_heads, hidden_size, head_ratio):
    """Returns (N', d, A) as the original `modeling.attention_layer` computes them.

    N' = int(N / γ); when that is < 1 the original falls back to N' = 1 (and resets
    γ := N, which only matters through N'). d = H // N always uses the config N (which
    may be a float such as 2.0 for generators). A = N'·d.
    """
    new_heads = int(num_attention_heads / head_ratio)
    n_heads = 1 if new_heads < 1 else new_heads
    head_size = int(hidden_size) // int(num_attention_heads)
    return n_heads, head_size, n_heads * head_size


def _dims(config):
    """All sizes of one encoder, resolved from a BertConfig-style dict."""
    for key in _REQUIRED:
        _field(config, key)
    h = int(_field(config, "hidden_size"))
    n_heads, head_size, bottleneck = head_arithmetic(
        _field(config, "num_attention_heads"), h, _field(config, "head_ratio"))
    k = int(_field(config, "conv_kernel_size"))
    return {
        "V": int(_field(config, "vocab_size")),
        "H": h,
        "E": embedding_width(config),
        "L": int(_field(config, "num_hidden_layers")),
        "I": int(_field(config, "intermediate_size")),
        "P": int(_field(config, "max_position_embeddings")),
        "S": int(_field(config, "type_vocab_size")),
        "Np": n_heads,
        "d": head_size,
        "A": bottleneck,
        "K": k,
        "G": int(_field(config, "linear_groups")),
        "sdconv": _field(config, "conv_type") == "sdconv",
        "act": _field(config, "hidden_act"),
    }


# --------------------------------------------------------------------------------------
# Variable names and shapes (the original's variable scopes in modeling.py)
# --------------------------------------------------------------------------------------

def _grouped_linear_shapes(scope, n_in, n_out, groups):
    """`dense` [in, out] for G = 1, else `g_dense` [G, in/G, out/G] with bias [out]."""
    if groups == 1:
        return {f"{scope}/dense/kernel": (n_in, n_out), f"{scope}/dense/bias": (n_out,)}
    # The original floors with int(); non-divisible sizes cannot run, so they are refused.
    if n_in % groups or n_out % groups:
        raise ValueError(
            f"linear_groups={groups} must divide both widths of {scope!r} "
            f"(in={n_in}, out={n_out})")
    return {f"{scope}/g_dense/kernel": (groups, n_in // groups, n_out // groups),
            f"{scope}/g_dense/bias": (n_out,)}


def layer_param_shapes(config):
    """Shapes of one encoder layer, keyed by the suffix after `<prefix>/encoder/layer_i/`."""
    dm = _dims(config)
    h, a, k, np_ = dm["H"], dm["A"], dm["K"], dm["Np"]
    shapes = {}
    for proj in ("query", "key", "value"):
        shapes[f"attention/self/{proj}/kernel"] = (h, a)
        shapes[f"attention/self/{proj}/bias"] = (a,)
    if dm["sdconv"]:
        shapes["attention/self/conv_attn_key/depthwise_kernel"] = (k, h, 1)
        shapes["attention/self/conv_attn_key/pointwise_kernel"] = (1, h, a)
        shapes["attention/self/conv_attn_key/bias"] = (a,)
        shapes["attention/self/conv_attn_kernel/kernel"] = (a, np_ * k)
        shapes["attention/self/conv_attn_kernel/bias"] = (np_ * k,)
        shapes["attention/self/conv_attn_point/kernel"] = (h, a)
        shapes["attention/self/conv_attn_point/bias"] = (a,)
    mixed = 2 * a if dm["sdconv"] else a  # noconv keeps only the N' attention heads
    shapes["attention/output/dense/kernel"] = (mixed, h)
    shapes["attention/output/dense/bias"] = (h,)
    shapes["attention/output/LayerNorm/beta"] = (h,)
    shapes["attention/output/LayerNorm/gamma"] = (h,)
    shapes.update(_grouped_linear_shapes("intermediate", h, dm["I"], dm["G"]))
    shapes.update(_grouped_linear_shapes("output", dm["I"], h, dm["G"]))
    shapes["output/LayerNorm/beta"] = (h,)
    shapes["output/LayerNorm/gamma"] = (h,)
    return shapes


def original_param_shapes(config, prefix="electra", with_embeddings=True):
    """All variables of one encoder as the original's checkpoints name them, in creation order.

    The five shared embedding variables always live under `electra/embeddings/` whatever
    `prefix` is; `with_embeddings` says whether to list them. The projection
    `<prefix>/embeddings_project` exists only when E != H.
    """
    dm = _dims(config)
    shapes = {}
    if with_embeddings:
        shapes["electra/embeddings/word_embeddings"] = (dm["V"], dm["E"])
        shapes["electra/embeddings/token_type_embeddings"] = (dm["S"], dm["E"])
        shapes["electra/embeddings/position_embeddings"] = (dm["P"], dm["E"])
        shapes["electra/embeddings/LayerNorm/beta"] = (dm["E"],)
        shapes["electra/embeddings/LayerNorm/gamma"] = (dm["E"],)
    if dm["E"] != dm["H"]:
        shapes[f"{prefix}/embeddings_project/kernel"] = (dm["E"], dm["H"])
        shapes[f"{prefix}/embeddings_project/bias"] = (dm["H"],)
    one_layer = layer_param_shapes(config)
    for i in range(dm["L"]):
        for suffix, shape in one_layer.items():
            shapes[f"{prefix}/encoder/layer_{i}/{suffix}"] = shape
    return shapes


def generator_config(config, hidden_fraction, layers_fraction=1.0):
    """The generator's config, as `run_pretraining.get_generator_config` builds it.

    hidden = round(H·frac), layers = round(L·layers_frac), intermediate = 4·hidden,
    heads = max(1, N·frac) (Python `max`, so it stays the int 1 when N·frac == 1.0 and is a
    float such as 2.0 otherwise); every other field is copied. `embedding_size` is written
    out as the discriminator's resolved E, because the original passes that resolved width
    to both models (base: E = 768 even though the copied field is None).
    """
    gen = dict(config)
    gen["hidden_size"] = int(round(int(_field(config, "hidden_size")) * hidden_fraction))
    gen["num_hidden_layers"] = int(round(int(_field(config, "num_hidden_layers"))
                                         * layers_fraction))
    gen["intermediate_size"] = 4 * gen["hidden_size"]
    gen["num_attention_heads"] = max(1, _field(config, "num_attention_heads") * hidden_fraction)
    gen["embedding_size"] = embedding_width(config)
    return gen


def generator_param_shapes(config, hidden_fraction, layers_fraction=1.0):
    """The generator encoder's own variables (`generator/...`), shared embeddings excluded."""
    return original_param_shapes(generator_config(config, hidden_fraction, layers_fraction),
                                 prefix="generator", with_embeddings=False)


def pretraining_head_shapes(config, generator_hidden):
    """`generator_predictions/...` (MLM head) and `discriminator_predictions/...` (RTD head)."""
    dm = _dims(config)
    e, h = dm["E"], dm["H"]
    return {
        "generator_predictions/dense/kernel": (int(generator_hidden), e),
        "generator_predictions/dense/bias": (e,),
        "generator_predictions/LayerNorm/beta": (e,),
        "generator_predictions/LayerNorm/gamma": (e,),
        "generator_predictions/output_bias": (dm["V"],),
        "discriminator_predictions/dense/kernel": (h, h),
        "discriminator_predictions/dense/bias": (h,),
        "discriminator_predictions/dense_1/kernel": (h, 1),
        "discriminator_predictions/dense_1/bias": (1,),
    }


def param_count(shapes):
    """Total number of scalars in a {name: shape} dict."""
    return int(sum(math.prod(shape) for shape in shapes.values()))


def random_original_params(shapes, seed):
    """Random float32 values for every variable, with scales that keep activations O(1).

    Each name draws from its own generator seeded by (seed, crc32(name)), so a variable's
    value does not depend on which other names are in the dict. Scales, by variable role:

      embedding tables                 N(0, 0.5)   (their sum into the LayerNorm has std ~0.9)
      dense / g_dense / pointwise      N(0, 1/sqrt(fan_in)), fan_in = the contracted width
      depthwise_kernel [K, H, 1]       N(0, 1/sqrt(K))
      bias, output_bias, beta          N(0, 0.2)   (non-zero, so a dropped bias shows)
      gamma                            U(0.5, 1.5)

    1/sqrt(fan_in) is 0.02-0.06 at the released widths and larger at test widths, where it
    keeps the attention probabilities and the conv kernel α far from uniform.
    """
    params = {}
    for name, shape in shapes.items():
        rng = np.random.default_rng([int(seed), zlib.crc32(name.encode("utf-8"))])
        leaf = name.rsplit("/", 1)[-1]
        if leaf.endswith("_embeddings"):
            value = rng.normal(0.0, 0.5, shape)
        elif leaf == "gamma":
            value = rng.uniform(0.5, 1.5, shape)
        elif leaf in ("beta", "bias", "output_bias"):
            value = rng.normal(0.0, 0.2, shape)
        elif leaf == "depthwise_kernel":
            value = rng.normal(0.0, 1.0 / math.sqrt(shape[0]), shape)
        elif leaf in ("kernel", "pointwise_kernel"):
            fan_in = shape[-2]  # [in, out], [G, in/G, out/G] and [1, in, out] alike
            value = rng.normal(0.0, 1.0 / math.sqrt(fan_in), shape)
        else:
            raise ValueError(f"random_original_params: no scale rule for variable {name!r}")
        params[name] = value.astype(np.float32)
    return params


def get_layer_params(params, prefix, layer_index):
    """The variables of one layer, keyed by the suffix after `<prefix>/encoder/layer_i/`."""
    head = f"{prefix}/encoder/layer_{layer_index}/"
    return {name[len(head):]: value for name, value in params.items() if name.startswith(head)}


# --------------------------------------------------------------------------------------
# Elementary functions
# --------------------------------------------------------------------------------------

_erf = np.vectorize(math.erf, otypes=[np.float64])


def np_gelu(x):
    """Exact GELU, x·0.5·(1 + erf(x/√2))."""
    x = np.asarray(x, np.float64)
    return x * 0.5 * (1.0 + _erf(x / math.sqrt(2.0)))


_ACTIVATIONS = {
    "gelu": np_gelu,
    "relu": lambda x: np.maximum(x, 0.0),
    "tanh": np.tanh,
    "linear": lambda x: x,
}


def np_layer_norm(x, gamma, beta, eps=_LAYER_NORM_EPS):
    """LayerNorm over the last axis (biased variance), then ·gamma + beta."""
    x = np.asarray(x, np.float64)
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * np.asarray(gamma, np.float64) \
        + np.asarray(beta, np.float64)


def np_softmax(x, axis=-1):
    """Numerically stable softmax."""
    x = np.asarray(x, np.float64)
    z = np.exp(x - x.max(axis=axis, keepdims=True))
    return z / z.sum(axis=axis, keepdims=True)


def np_dense(x, kernel, bias):
    """x·W + b over the last axis."""
    return np.asarray(x, np.float64) @ np.asarray(kernel, np.float64) \
        + np.asarray(bias, np.float64)


def np_grouped_linear(x, kernel, bias):
    """`GDense`: contiguous input chunks, chunk g times kernel[g], concatenated, + bias.

    x [..., in], kernel [G, in/G, out/G], bias [out] -> [..., out]. No channel shuffle.
    """
    kernel = np.asarray(kernel, np.float64)
    groups, in_per_group, _ = kernel.shape
    x = np.asarray(x, np.float64)
    if x.shape[-1] != groups * in_per_group:
        raise ValueError(f"g_dense input width {x.shape[-1]} != G·in/G = {groups}·{in_per_group}")
    chunks = [x[..., g * in_per_group:(g + 1) * in_per_group] @ kernel[g]  # [..., out/G]
              for g in range(groups)]
    return np.concatenate(chunks, axis=-1) + np.asarray(bias, np.float64)  # [..., out]


def _feed_forward_linear(x, layer_params, scope):
    """`<scope>/dense` (G = 1) or `<scope>/g_dense` (G > 1), whichever the params hold."""
    if f"{scope}/g_dense/kernel" in layer_params:
        return np_grouped_linear(x, layer_params[f"{scope}/g_dense/kernel"],
                                 layer_params[f"{scope}/g_dense/bias"])
    return np_dense(x, layer_params[f"{scope}/dense/kernel"], layer_params[f"{scope}/dense/bias"])


# --------------------------------------------------------------------------------------
# Embeddings (the original's `embedding_lookup` and `embedding_postprocessor`)
# --------------------------------------------------------------------------------------

def np_embeddings(params, config, input_ids, segment_ids, prefix="electra"):
    """h⁰ = LN(W_word[ids] + W_type[seg] + W_pos[0..T-1]) at width E, then ·W_proj + b if E != H.

    input_ids, segment_ids [B, T] int -> [B, T, H]. The tables are always the shared
    `electra/embeddings/...`; the projection is `<prefix>/embeddings_project`.
    """
    dm = _dims(config)
    input_ids = np.asarray(input_ids)
    segment_ids = np.asarray(segment_ids)
    t = input_ids.shape[1]
    positions = np.asarray(params["electra/embeddings/position_embeddings"], np.float64)
    if t > positions.shape[0]:
        raise ValueError(f"sequence length {t} > max_position_embeddings {positions.shape[0]}")
    words = np.asarray(params["electra/embeddings/word_embeddings"], np.float64)
    types = np.asarray(params["electra/embeddings/token_type_embeddings"], np.float64)
    summed = words[input_ids] + types[segment_ids] + positions[:t][None]  # [B, T, E]
    out = np_layer_norm(summed, params["electra/embeddings/LayerNorm/gamma"],
                        params["electra/embeddings/LayerNorm/beta"])  # [B, T, E]
    if dm["E"] != dm["H"]:
        out = np_dense(out, params[f"{prefix}/embeddings_project/kernel"],
                       params[f"{prefix}/embeddings_project/bias"])  # [B, T, H]
    return out


# --------------------------------------------------------------------------------------
# Span-based dynamic convolution and mixed attention (the original `modeling.attention_layer`)
# --------------------------------------------------------------------------------------

def np_span_conv(x, query, layer_params, config, input_mask=None, mask_padding=False):
    """The N' conv heads of `modeling.attention_layer`, written as explicit loops over time and offset.

    x [B, T, H] is the layer input; query [B, T, A] is Q (bias included, not scaled).
    Returns O_conv [B, T, A], channels head-major (head n occupies d contiguous channels).

    mask_padding=False reproduces the original, which ignores the mask, so padded states
    leak into the last c real tokens. mask_padding=True zeroes x at padded positions
    before the depthwise conv and U at padded positions before the unfold.
    """
    dm = _dims(config)
    n_heads, head_size, k = dm["Np"], dm["d"], dm["K"]
    if k % 2 != 1:
        raise ValueError(f"conv_kernel_size must be odd (the original crashes for even "
                         f"sizes); got {k}")
    c = (k - 1) // 2
    x = np.asarray(x, np.float64)
    query = np.asarray(query, np.float64)
    b, t, _ = x.shape
    keep = None
    if mask_padding:
        if input_mask is None:
            raise ValueError("mask_padding=True needs input_mask")
        keep = np.asarray(input_mask, np.float64)[:, :, None]  # [B, T, 1]
        x = x * keep

    # 1. Span-aware key: depthwise conv over time ('same' zero padding), then pointwise.
    depthwise = np.asarray(layer_params["attention/self/conv_attn_key/depthwise_kernel"],
                           np.float64)[:, :, 0]  # [K, H]
    dw = np.zeros_like(x)  # [B, T, H]
    for pos in range(t):
        for i in range(k):
            src = pos + i - c
            if 0 <= src < t:
                dw[:, pos, :] += depthwise[i] * x[:, src, :]
    pointwise = np.asarray(layer_params["attention/self/conv_attn_key/pointwise_kernel"],
                           np.float64)[0]  # [H, A]
    span_key = dw @ pointwise + np.asarray(
        layer_params["attention/self/conv_attn_key/bias"], np.float64)  # [B, T, A]

    # 2. Dynamic kernel: α = softmax_K((K_s ⊙ Q)·W_g + b_g), per head.
    span_logits = np_dense(span_key * query,
                           layer_params["attention/self/conv_attn_kernel/kernel"],
                           layer_params["attention/self/conv_attn_kernel/bias"])  # [B, T, N'·K]
    span_kernel = np_softmax(span_logits.reshape(b, t, n_heads, k), axis=-1)  # [B, T, N', K]

    # 3. Conv value U, a separate projection of x.
    conv_values = np_dense(x, layer_params["attention/self/conv_attn_point/kernel"],
                           layer_params["attention/self/conv_attn_point/bias"])  # [B, T, A]
    if keep is not None:
        conv_values = conv_values * keep
    conv_values = conv_values.reshape(b, t, n_heads, head_size)  # [B, T, N', d]

    # 4-5. O[b, t, n, :] = Σ_i α[b, t, n, i] · U[b, t+i-c, n, :], zero outside 0..T-1.
    out = np.zeros((b, t, n_heads, head_size))  # [B, T, N', d]
    for pos in range(t):
        for i in range(k):
            src = pos + i - c
            if 0 <= src < t:
                out[:, pos] += span_kernel[:, pos, :, i, None] * conv_values[:, src]
    return out.reshape(b, t, n_heads * head_size)  # [B, T, A]


def np_attention_bias(input_mask):
    """Additive key mask (1 - input_mask)·(-10000): [B, T] -> [B, 1, 1, T]."""
    mask = np.asarray(input_mask, np.float64)
    return ((1.0 - mask) * _ATTENTION_MASK_VALUE)[:, None, None, :]  # [B, 1, 1, T]


def np_mixed_attention(x, input_mask, layer_params, config, mask_padding=False):
    """Mixed attention up to and including `attention/output/dense` (no residual, no LN).

    x [B, T, H], input_mask [B, T] (1 = real token) -> [B, T, H]. N' self-attention heads
    (keys masked additively) and, for sdconv, N' span-conv heads sharing Q; concatenated as
    [attention heads 0..N'-1, conv heads 0..N'-1] (2A channels, or A for noconv), then
    projected by the output dense.
    """
    dm = _dims(config)
    n_heads, head_size = dm["Np"], dm["d"]
    x = np.asarray(x, np.float64)
    b, t, _ = x.shape

    def project(name):
        return np_dense(x, layer_params[f"attention/self/{name}/kernel"],
                        layer_params[f"attention/self/{name}/bias"])  # [B, T, A]

    def split_heads(y):
        return y.reshape(b, t, n_heads, head_size).transpose(0, 2, 1, 3)  # [B, N', T, d]

    query = project("query")  # [B, T, A]
    q, kk, v = split_heads(query), split_heads(project("key")), split_heads(project("value"))
    scores = q @ kk.transpose(0, 1, 3, 2) / math.sqrt(head_size)  # [B, N', T, T]
    probs = np_softmax(scores + np_attention_bias(input_mask), axis=-1)  # [B, N', T, T]
    attended = (probs @ v).transpose(0, 2, 1, 3).reshape(b, t, n_heads * head_size)  # [B, T, A]

    if dm["sdconv"]:
        conv = np_span_conv(x, query, layer_params, config, input_mask=input_mask,
                            mask_padding=mask_padding)  # [B, T, A]
        mixed = np.concatenate([attended, conv], axis=-1)  # [B, T, 2A]
    else:
        mixed = attended  # [B, T, A]
    return np_dense(mixed, layer_params["attention/output/dense/kernel"],
                    layer_params["attention/output/dense/bias"])  # [B, T, H]


def np_encoder_layer(x, input_mask, layer_params, config, mask_padding=False):
    """One full encoder layer: Y = LN(X + MixedAttn(X)); Z = LN(Y + GL₂(act(GL₁(Y)))).

    x [B, T, H] -> [B, T, H].
    """
    dm = _dims(config)
    x = np.asarray(x, np.float64)
    attention = np_mixed_attention(x, input_mask, layer_params, config,
                                   mask_padding=mask_padding)  # [B, T, H]
    y = np_layer_norm(x + attention, layer_params["attention/output/LayerNorm/gamma"],
                      layer_params["attention/output/LayerNorm/beta"])  # [B, T, H]
    hidden = _ACTIVATIONS[dm["act"]](_feed_forward_linear(y, layer_params, "intermediate"))  # [B, T, I]
    out = _feed_forward_linear(hidden, layer_params, "output")  # [B, T, H]
    return np_layer_norm(y + out, layer_params["output/LayerNorm/gamma"],
                         layer_params["output/LayerNorm/beta"])  # [B, T, H]


def np_encoder(params, config, input_ids, input_mask, segment_ids, prefix="electra",
               mask_padding=False):
    """The whole encoder: [h⁰ (after the projection), h¹, ..., h^L], each [B, T, H]."""
    dm = _dims(config)
    hidden = np_embeddings(params, config, input_ids, segment_ids, prefix=prefix)  # [B, T, H]
    states = [hidden]
    for i in range(dm["L"]):
        hidden = np_encoder_layer(hidden, input_mask, get_layer_params(params, prefix, i),
                                  config, mask_padding=mask_padding)  # [B, T, H]
        states.append(hidden)
    return states


# --------------------------------------------------------------------------------------
# Pretraining heads (the original PretrainingModel._get_masked_lm_output, _get_discriminator_output)
# --------------------------------------------------------------------------------------

def np_generator_head(hidden, params, word_embeddings):
    """MLM logits: u = LN(GELU(h·W + b)); logits = u·W_wordᵀ + output_bias.

    hidden [B, P, Hg], word_embeddings [V, E] -> [B, P, V].
    """
    u = np_gelu(np_dense(hidden, params["generator_predictions/dense/kernel"],
                         params["generator_predictions/dense/bias"]))  # [B, P, E]
    u = np_layer_norm(u, params["generator_predictions/LayerNorm/gamma"],
                      params["generator_predictions/LayerNorm/beta"])  # [B, P, E]
    return u @ np.asarray(word_embeddings, np.float64).T \
        + np.asarray(params["generator_predictions/output_bias"], np.float64)  # [B, P, V]


def np_discriminator_head(hidden, params):
    """RTD logits: z = GELU(h·W₁ + b₁)·W₂ + b₂. hidden [B, T, H] -> [B, T]."""
    z = np_gelu(np_dense(hidden, params["discriminator_predictions/dense/kernel"],
                         params["discriminator_predictions/dense/bias"]))  # [B, T, H]
    logits = np_dense(z, params["discriminator_predictions/dense_1/kernel"],
                      params["discriminator_predictions/dense_1/bias"])  # [B, T, 1]
    return logits[..., 0]  # [B, T]
