"""What pretraining and fine-tuning hparams share: reading --hparams, the model and TPU fields."""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any, Mapping

from convbert_tf.config import DEFAULT_CONV_IMPLEMENTATION, MODEL_SIZES, ConfigError, ConvBertConfig

# The hparams that shape the encoder, passed to ConvBertConfig's --hparams form.
MODEL_KEYS = ("model_size", "model_hparam_overrides", "embedding_size", "vocab_size", "conv_kernel_size",
              "linear_groups", "head_ratio", "conv_type", "conv_mask_padding", "conv_implementation")


def read_hparams(hparams: str | Mapping | None) -> dict:
    """--hparams as a dict: a JSON string, a path ending in .json, or a dict."""
    if hparams is None or hparams == "":
        return {}
    if isinstance(hparams, Mapping):
        return dict(hparams)
    if hparams.endswith(".json"):
        if not os.path.exists(hparams):
            raise ConfigError(f"--hparams file {hparams} does not exist")
        with open(hparams) as f:
            text, source = f.read(), f"--hparams file {hparams}"
    else:
        text, source = hparams, "--hparams"
    return parse_json_object(text, source, "; pass a JSON object or a .json path")


def parse_json_object(text: str, source: str, advice: str = "") -> dict:
    """`text` as a JSON object; anything else is a ConfigError naming `source` (a flag or file)."""
    try:
        values = json.loads(text)
    except json.JSONDecodeError as e:
        raise ConfigError(f"{source} is not valid JSON ({e}){advice}") from None
    if not isinstance(values, dict):
        raise ConfigError(f"{source} must be a JSON object, got {type(values).__name__}")
    return values


def user_hparams(cls, hparams, model_name: str | None, overrides: Mapping, see: str) -> tuple[dict, str]:
    """The user's hparams (--hparams, then the flags in `overrides` that are set, and --model_name
    unless --hparams names the model) checked against `cls`'s fields, and their model_size.

    Raises:
        ConfigError: an unknown hparam (the message ends with `see`, where the list is) or size.
    """
    user = read_hparams(hparams)
    user.update({k: v for k, v in overrides.items() if v is not None})
    if model_name is not None:
        user.setdefault("model_name", model_name)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(user) - known)
    if unknown:
        raise ConfigError(f"--hparams: unknown hparam(s) {unknown}; see {see}")
    size = user.get("model_size", cls.model_size)
    if size not in MODEL_SIZES:
        raise ConfigError(f"--hparams: model_size {size!r} is not one of {sorted(MODEL_SIZES)}")
    return user, size


def check_positive_ints(resolved, keys) -> None:
    """Each of `keys` must be an int >= 1; the error names the hparam."""
    for key in keys:
        value = getattr(resolved, key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"--hparams: {key} must be a positive integer, got {value!r}")


@dataclasses.dataclass(frozen=True)
class ModelHParams:
    """The original's model, tokenizer and TPU hparams, common to both entry points."""

    model_name: str = "convbert"
    """The run's name: <data_dir>/models/<model_name> holds its checkpoints and outputs."""

    # Model.
    model_size: str = "medium-small"
    """small, medium-small or base."""
    model_hparam_overrides: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    """BertConfig fields to override (applied as the original's get_bert_config does)."""
    embedding_size: int | None = None
    """E; the per-size value (128, or None = hidden for base) unless given."""
    vocab_size: int = 30522
    """Vocabulary size; must cover the vocab file."""
    do_lower_case: bool = True
    """Lower-case raw text when tokenizing."""
    strip_accents: bool = True
    """Strip accents when lower-casing (the original's --no-strip-accents turns it off)."""
    conv_kernel_size: int = 9
    """Span convolution kernel size k."""
    linear_groups: int = 2
    """Groups of the grouped linear FFN (per-size value unless given)."""
    head_ratio: int = 2
    """gamma of the mixed attention."""
    conv_type: str = "sdconv"
    """sdconv or noconv."""
    conv_mask_padding: bool = False
    """Not in the original: keep [PAD] out of the convolution heads (see ConvBertConfig)."""
    conv_implementation: str = DEFAULT_CONV_IMPLEMENTATION
    """Not in the original: formulation of the span convolution (see ConvBertConfig)."""

    # TPU (the original's names; the --tpu flags set the same values).
    use_tpu: bool = False
    """Run on a TPU (the --strategy=tpu flag)."""
    tpu_job_name: str | None = None
    """Unused, kept for compatibility."""
    num_tpu_cores: int = 1
    """Unused: TPUStrategy finds the cores."""
    tpu_name: str | None = None
    """TPU name or address."""
    tpu_zone: str | None = None
    """GCE zone of the TPU."""
    gcp_project: str | None = None
    """GCP project of the TPU."""

    # Not in the original.
    seed: int = 0
    """Seed of initialisation, data order, masking, sampling and dropout."""

    def resolve_model_config(self, extra_overrides: Mapping | None = None) -> ConvBertConfig:
        """The encoder's ConvBertConfig, resolved as the original's get_bert_config."""
        values = {k: getattr(self, k) for k in MODEL_KEYS}
        values["model_hparam_overrides"] = {**(extra_overrides or {}), **dict(self.model_hparam_overrides)}
        return ConvBertConfig.from_dict(values, source="--hparams")

    def to_json_string(self) -> str:
        """Every resolved hparam, for the run directory."""
        values = dataclasses.asdict(self)
        values["model_hparam_overrides"] = dict(self.model_hparam_overrides)
        for key, value in values.items():
            if isinstance(value, tuple):
                values[key] = list(value)
        return json.dumps(values, indent=2, sort_keys=True) + "\n"
