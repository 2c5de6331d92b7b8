"""ConvBertConfig: the model's hyperparameters, strictly loaded from the original release's formats.

Two JSON forms are read, both as the original release wrote them:

* the BertConfig form (`vocab_size`, `hidden_size`, ..., plus the four ConvBERT fields
  `embedding_size`, `head_ratio`, `conv_kernel_size`, `linear_groups`, `conv_type`);
* the `--hparams` form of `configure_pretraining.py` / `configure_finetuning.py`
  (`model_size`, `model_hparam_overrides`, `embedding_size`, ...), resolved the way the
  original's `get_bert_config` resolves it.

Every unknown key is an error that names the key; every width that does not divide is an
error that names the numbers.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any, Mapping

from convbert_tf import io

MODEL_SIZES = ("small", "medium-small", "base")
ACTIVATIONS = ("gelu", "relu", "tanh", "linear")
CONV_TYPES = ("sdconv", "noconv")
# Formulations of the span convolution; all give the same numbers (see layers/span_dynamic_conv.py).
CONV_IMPLEMENTATIONS = ("unfold", "shifted", "shifted_xla")
DEFAULT_CONV_IMPLEMENTATION = "shifted_xla"  # the fastest in training (benchmarks/README.md)


class ConfigError(ValueError):
    """A configuration that the model cannot be built from; the message says which key and why."""


@dataclasses.dataclass(frozen=True)
class HeadArithmetic:
    """Head counts derived from a config, as the original `attention_layer` derives them.

    Attributes:
      num_heads: N', the number of self-attention heads and also of convolution heads.
      head_size: d = hidden_size / num_attention_heads (always from the config's head count).
      bottleneck_size: A = N' * d, the width of the query/key/value projections.
      head_ratio: the effective ratio; the original resets it to num_attention_heads when
        num_attention_heads / head_ratio < 1 (only the small generator hits this).
    """

    num_heads: int
    head_size: int
    bottleneck_size: int
    head_ratio: int


def head_arithmetic(num_attention_heads: int, hidden_size: int, head_ratio: int) -> HeadArithmetic:
    """Returns N', d and A for a mixed attention block, with the original's fallback.

    int(N / head_ratio) heads of each kind; if that is 0 the original keeps one head of each
    kind and sets head_ratio := N, so the mixed output (2 * d) is wider than hidden_size.
    """
    head_size = hidden_size // num_attention_heads
    num_heads = int(num_attention_heads / head_ratio)
    if num_heads < 1:
        num_heads, head_ratio = 1, num_attention_heads
    return HeadArithmetic(num_heads, head_size, num_heads * head_size, head_ratio)


def _as_int(key: str, value: Any) -> int:
    """Accepts ints and integral floats (the original writes generator head counts as 2.0)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value):
        raise ConfigError(f"config key '{key}' must be a whole number, got {value!r}")
    return int(value)


@dataclasses.dataclass(frozen=True)
class ConvBertConfig:
    """Hyperparameters of a ConvBERT encoder (discriminator or generator).

    Field names are the original release's BertConfig names, so a config.json written by the
    original (or by `to_json_file`) round-trips unchanged.
    """

    vocab_size: int = 30522
    """V, the WordPiece vocabulary size."""
    hidden_size: int = 768
    """H (D in the code legend), the width of every encoder layer."""
    num_hidden_layers: int = 12
    """L, the number of encoder layers."""
    num_attention_heads: int = 12
    """N in the config. Self-attention and convolution heads are N / head_ratio each."""
    intermediate_size: int = 3072
    """I, the feed-forward inner width."""
    hidden_act: str = "gelu"
    """Feed-forward activation: exact (erf) 'gelu', 'relu', 'tanh' or 'linear'."""
    hidden_dropout_prob: float = 0.1
    """Dropout after the embeddings, the attention output and the feed-forward output."""
    attention_probs_dropout_prob: float = 0.1
    """Dropout on the self-attention probabilities (never on the convolution kernels)."""
    max_position_embeddings: int = 512
    """Rows of the position table; sequences may be at most this long."""
    type_vocab_size: int = 2
    """Rows of the segment (token type) table."""
    initializer_range: float = 0.02
    """Stddev of the truncated-normal initializer of most kernels and tables."""
    embedding_size: int | None = None
    """E, the embedding width; None means hidden_size (no projection layer)."""
    head_ratio: int = 2
    """gamma: the bottleneck divides the heads by this and adds as many convolution heads."""
    conv_kernel_size: int = 9
    """k, the span convolution's window; must be odd."""
    linear_groups: int = 1
    """G, the groups of the grouped linear feed-forward layers (1 = plain dense)."""
    conv_type: str = "sdconv"
    """'sdconv' (span-based dynamic convolution heads) or 'noconv' (attention heads only)."""
    conv_mask_padding: bool = False
    """Not in the original: keep padded positions out of the convolution branch.

    The original's convolution heads read [PAD] positions next to real tokens, so the last
    (k-1)/2 real tokens' outputs depend on how much padding follows. True removes that
    dependence; False (the default) reproduces released checkpoints' numbers exactly.
    """

    conv_implementation: str = DEFAULT_CONV_IMPLEMENTATION
    """Not in the original: how the span convolution is computed; every choice gives the same
    outputs (to float rounding). 'unfold' is the simple reference formulation; 'shifted_xla'
    (the default) the fastest in training; exported SavedModels always hold the XLA-free
    'shifted' form (see layers/span_dynamic_conv.py)."""

    def __post_init__(self):
        for key in ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                    "intermediate_size", "max_position_embeddings", "type_vocab_size",
                    "head_ratio", "conv_kernel_size", "linear_groups"):
            object.__setattr__(self, key, _as_int(key, getattr(self, key)))
            if getattr(self, key) < 1:
                raise ConfigError(f"config key '{key}' must be >= 1, got {getattr(self, key)}")
        if self.embedding_size is not None:
            object.__setattr__(self, "embedding_size", _as_int("embedding_size", self.embedding_size))
        if self.hidden_act not in ACTIVATIONS:
            raise ConfigError(f"config key 'hidden_act' is {self.hidden_act!r}; use one of {ACTIVATIONS}")
        if self.conv_type not in CONV_TYPES:
            raise ConfigError(f"config key 'conv_type' is {self.conv_type!r}; use one of {CONV_TYPES}")
        if self.conv_implementation not in CONV_IMPLEMENTATIONS:
            raise ConfigError(f"config key 'conv_implementation' is {self.conv_implementation!r}; "
                              f"use one of {CONV_IMPLEMENTATIONS}")
        if self.conv_kernel_size % 2 == 0:
            raise ConfigError(
                f"config key 'conv_kernel_size' is {self.conv_kernel_size}, but the span convolution "
                "needs an odd kernel (it pads (k-1)/2 on each side); use e.g. 9")
        if self.hidden_size % self.num_attention_heads:
            raise ConfigError(
                f"config key 'hidden_size' ({self.hidden_size}) is not divisible by "
                f"'num_attention_heads' ({self.num_attention_heads})")
        heads = self.num_attention_heads
        if heads >= self.head_ratio and heads % self.head_ratio:
            raise ConfigError(
                f"config key 'num_attention_heads' ({heads}) is not divisible by 'head_ratio' "
                f"({self.head_ratio}); each branch needs a whole number of heads")
        for key, width in (("hidden_size", self.hidden_size), ("intermediate_size", self.intermediate_size)):
            if width % self.linear_groups:
                raise ConfigError(
                    f"config key '{key}' ({width}) is not divisible by 'linear_groups' "
                    f"({self.linear_groups})")
        for key in ("hidden_dropout_prob", "attention_probs_dropout_prob"):
            if not 0.0 <= getattr(self, key) < 1.0:
                raise ConfigError(f"config key '{key}' must be in [0, 1), got {getattr(self, key)}")

    # ----- derived values: one place ------------------------------------------------------
    @property
    def resolved_embedding_size(self) -> int:
        """E: embedding_size, or hidden_size when it is None."""
        return self.hidden_size if self.embedding_size is None else self.embedding_size

    @property
    def heads(self) -> HeadArithmetic:
        """N', d and A of every mixed attention block of this config."""
        return head_arithmetic(self.num_attention_heads, self.hidden_size, self.head_ratio)

    # ----- (de)serialization --------------------------------------------------------------
    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json_string(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    def to_json_file(self, path: str) -> None:
        """Writes the config atomically (`convbert_tf.io`; gs:// and other remote paths too)."""
        io.atomic_write_text(path, self.to_json_string())

    def replace(self, **changes) -> "ConvBertConfig":
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], source: str = "config") -> "ConvBertConfig":
        """Builds a config from either JSON form; `source` names the origin in errors."""
        if not isinstance(values, Mapping):
            raise ConfigError(f"{source}: expected a JSON object, got {type(values).__name__}")
        if "model_size" in values or not ({"hidden_size", "num_hidden_layers"} & set(values)):
            return _from_hparams(values, source)
        field_names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - field_names)
        if unknown:
            raise ConfigError(f"{source}: unknown config key(s) {unknown}; known keys are {sorted(field_names)}")
        try:
            return cls(**values)
        except ConfigError as e:
            raise ConfigError(f"{source}: {e}") from None

    @classmethod
    def from_json_file(cls, path: str) -> "ConvBertConfig":
        """Reads a config in the BertConfig form or the original `--hparams` form."""
        try:
            values = json.loads(_read_text(path))
        except FileNotFoundError:
            raise ConfigError(f"config file {path} does not exist") from None
        except json.JSONDecodeError as e:
            raise ConfigError(f"config file {path} is not valid JSON: {e}") from None
        return cls.from_dict(values, source=f"config file {path}")

    @classmethod
    def from_preset(cls, name: str) -> "ConvBertConfig":
        """One of the released sizes, built from `SIZES` (the repository's configs/<name>.json hold
        the same configs in the BertConfig form)."""
        if name not in MODEL_SIZES:
            raise ConfigError(f"unknown preset {name!r}; known presets are {list(MODEL_SIZES)}")
        return _from_hparams({"model_size": name}, f"preset {name}")


def _read_text(path: str) -> str:
    """A local file's text, or a remote one's (gs://...) through tf.io.gfile."""
    if not io.is_remote(path):
        with open(path) as f:
            return f.read()
    import tensorflow as tf

    if not tf.io.gfile.exists(path):
        raise FileNotFoundError(path)
    with tf.io.gfile.GFile(path) as f:
        return f.read()


def load_config(config: "ConvBertConfig | str | Mapping") -> ConvBertConfig:
    """Accepts a config, a preset name, a path to JSON in either form, or a dict."""
    if isinstance(config, ConvBertConfig):
        return config
    if isinstance(config, Mapping):
        return ConvBertConfig.from_dict(config)
    if isinstance(config, str):
        if config in MODEL_SIZES:
            return ConvBertConfig.from_preset(config)
        return ConvBertConfig.from_json_file(config)
    raise ConfigError(f"expected a ConvBertConfig, a preset name or a JSON path, got {type(config).__name__}")


# ----- the original `--hparams` form ---------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class SizeValues:
    """Everything that depends on `model_size`: the model's shape and the size-dependent training
    hparams, as the original's configure_pretraining.py and configure_finetuning.py set them.

    Attributes:
      hidden_size: D; 12 layers and intermediate size 4 D for every size.
      head_width: D per attention head (num_attention_heads = D // head_width).
      embedding_size: E, or None for E = D.
      linear_groups: G of the grouped feed-forward layers.
      pretrain_learning_rate: lr0 of pretraining.
      pretrain_batch_size: train_batch_size and eval_batch_size of pretraining.
      generator_hidden_size: the generator's width as a fraction of D.
      finetune_learning_rate: lr0 of fine-tuning.
    """

    hidden_size: int
    head_width: int
    embedding_size: int | None
    linear_groups: int
    pretrain_learning_rate: float
    pretrain_batch_size: int
    generator_hidden_size: float
    finetune_learning_rate: float


# The one home of per-size values: the presets, the --hparams form below and both runs' hparams
# read them from here.
SIZES = {
    "small": SizeValues(256, 64, 128, 1, 3e-4, 128, 0.25, 3e-4),
    "medium-small": SizeValues(384, 48, 128, 2, 5e-4, 128, 0.25, 3e-4),
    "base": SizeValues(768, 64, None, 1, 2e-4, 256, 1 / 3, 1e-4),
}


def pretraining_size_hparams(size: str) -> dict:
    """The per-size pretraining hparams (applied over the defaults, under the user's)."""
    values = SIZES[size]
    return dict(learning_rate=values.pretrain_learning_rate, train_batch_size=values.pretrain_batch_size,
                eval_batch_size=values.pretrain_batch_size, embedding_size=values.embedding_size,
                generator_hidden_size=values.generator_hidden_size, linear_groups=values.linear_groups)


def finetuning_size_hparams(size: str) -> dict:
    """The per-size fine-tuning hparams (applied over the defaults, under the per-task and user's)."""
    values = SIZES[size]
    return dict(learning_rate=values.finetune_learning_rate, embedding_size=values.embedding_size,
                linear_groups=values.linear_groups)


# hparams that shape the model, with the original defaults.
_MODEL_HPARAMS = dict(model_size="medium-small", model_hparam_overrides={}, embedding_size=None,
                      vocab_size=30522, conv_kernel_size=9, linear_groups=2, head_ratio=2,
                      conv_type="sdconv")

# hparams of the original scripts that do not shape the encoder; accepted and ignored here.
TRAINING_HPARAMS = frozenset("""
model_name debug do_train do_eval electra_objective gen_weight disc_weight mask_prob learning_rate
lr_decay_power weight_decay_rate num_warmup_steps iterations_per_loop save_checkpoints_steps
num_train_steps num_eval_steps do_lower_case uniform_generator untied_generator_embeddings
untied_generator generator_layers generator_hidden_size disallow_correct temperature max_seq_length
train_batch_size eval_batch_size predict_batch_size use_tpu tpu_job_name num_tpu_cores tpu_name
tpu_zone gcp_project pretrain_tfrecords vocab_file model_dir results_txt results_pkl
max_predictions_per_seq log_examples num_trials keep_all_models task_names layerwise_lr_decay
num_train_epochs warmup_proportion use_tfrecords_if_existing write_test_outputs n_writes_test
double_unordered max_query_length doc_stride n_best_size max_answer_length answerable_classifier
answerable_uses_start_logits answerable_weight joint_prediction beam_size qa_na_threshold
init_checkpoint data_dir raw_data_dir preprocessed_data_dir test_predictions qa_preds_file
qa_eval_file qa_na_file
""".split())


def _from_hparams(values: Mapping[str, Any], source: str) -> ConvBertConfig:
    """Resolves the original `--hparams` form the way `get_bert_config` does.

    Per-size values are applied over the defaults, then the user's hparams win again; the
    head count (hidden // 64, medium-small hidden // 48) and intermediate size (4 * hidden)
    follow the hidden size unless `model_hparam_overrides` sets them.
    """
    extras = {"conv_mask_padding", "conv_implementation"}  # this project's, not the original's
    unknown = sorted(set(values) - set(_MODEL_HPARAMS) - TRAINING_HPARAMS - extras)
    if unknown:
        raise ConfigError(f"{source}: unknown hparam(s) {unknown}")
    size = values.get("model_size", _MODEL_HPARAMS["model_size"])
    if size == "large":
        raise ConfigError(f"{source}: model_size 'large' is not supported by the original release")
    if size not in SIZES:
        raise ConfigError(f"{source}: unknown model_size {size!r}; use one of {list(MODEL_SIZES)}")
    hp = dict(_MODEL_HPARAMS)
    hp.update(embedding_size=SIZES[size].embedding_size, linear_groups=SIZES[size].linear_groups)
    hp.update({k: v for k, v in values.items() if k in _MODEL_HPARAMS or k in extras})
    overrides = hp.pop("model_hparam_overrides") or {}
    if not isinstance(overrides, Mapping):
        raise ConfigError(f"{source}: 'model_hparam_overrides' must be a JSON object")
    bert_keys = {f.name for f in dataclasses.fields(ConvBertConfig)}
    bad = sorted(set(overrides) - bert_keys)
    if bad:
        raise ConfigError(f"{source}: unknown key(s) {bad} in 'model_hparam_overrides'")

    args = {"hidden_size": SIZES[size].hidden_size, "num_hidden_layers": 12}
    args.update(overrides)
    args["num_attention_heads"] = max(1, args["hidden_size"] // SIZES[size].head_width)
    args["intermediate_size"] = 4 * args["hidden_size"]
    args.update(overrides)
    for key in ("vocab_size", "embedding_size", "conv_kernel_size", "linear_groups", "head_ratio",
                "conv_type", "conv_mask_padding", "conv_implementation"):
        if key in hp and key not in overrides:
            args[key] = hp[key]
    try:
        return ConvBertConfig(**args)
    except ConfigError as e:
        raise ConfigError(f"{source}: {e}") from None
