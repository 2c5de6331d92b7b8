"""The architectures an ablation compares: the paper's ladder from BERT to ConvBERT, and user variants.

A variant is a name and the ConvBertConfig fields it sets over the base model (the preset of
--model_size). The paper's ladder, each step adding one of ConvBERT's changes to the last:

  bert           self-attention only: head_ratio 1, conv_type noconv, linear_groups 1
  +bottleneck    half as many, as wide, attention heads: head_ratio 2 (the bottleneck C = D / 2)
  +span_conv     the bottleneck's other half as span-based dynamic convolution heads (mixed attention)
  +grouped_ffn   the feed-forward layers in 2 groups: ConvBERT

Every ladder step sets all three keys, so the ladder does not depend on the preset's values.
"""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Any, Mapping

from convbert_tf.config import ConfigError, ConvBertConfig

# The ConvBertConfig fields the ladder varies.
ARCHITECTURE_KEYS = ("head_ratio", "conv_type", "linear_groups")
LADDER = {
    "bert": {"head_ratio": 1, "conv_type": "noconv", "linear_groups": 1},
    "+bottleneck": {"head_ratio": 2, "conv_type": "noconv", "linear_groups": 1},
    "+span_conv": {"head_ratio": 2, "conv_type": "sdconv", "linear_groups": 1},
    "+grouped_ffn": {"head_ratio": 2, "conv_type": "sdconv", "linear_groups": 2},
}
DEFAULT_VARIANTS = ",".join(LADDER)
# The row every other variant is compared with, when it is one of the variants.
BASELINE = "bert"
# Fields the data decides (the vocab) and every variant shares.
_SHARED_FIELDS = ("vocab_size",)
_NAME = re.compile(r"[A-Za-z0-9_.+-]+")


@dataclasses.dataclass(frozen=True)
class Variant:
    """One architecture of an ablation.

    Attributes:
      name: the row's name; its runs live in <output_dir>/runs/<name>/.
      overrides: ConvBertConfig fields set over the base model's config.
    """

    name: str
    overrides: Mapping[str, Any]

    def to_json(self) -> dict:
        return {"name": self.name, "overrides": dict(self.overrides)}


def check_overrides(name: str, overrides) -> dict:
    """A variant's overrides as a dict; unknown or shared fields are errors naming them."""
    if not isinstance(overrides, Mapping):
        raise ConfigError(f"--variants: variant {name!r} must be a JSON object of config fields, got "
                          f"{json.dumps(overrides)}")
    fields = {f.name for f in dataclasses.fields(ConvBertConfig)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise ConfigError(f"--variants: variant {name!r} sets unknown config field(s) {unknown}; the fields are "
                          f"{sorted(fields - set(_SHARED_FIELDS))}")
    shared = sorted(set(overrides) & set(_SHARED_FIELDS))
    if shared:
        raise ConfigError(f"--variants: variant {name!r} sets {shared}, which the data decides for every variant")
    return dict(overrides)


def _check_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ConfigError(f"--variants: variant name {name!r} must be letters, digits and _ . + - only "
                          "(it names a directory)")
    return name


def parse_variants(text: str) -> list[Variant]:
    """--variants: ladder names separated by commas (`bert,+grouped_ffn`), or a JSON object whose keys
    name the variants and whose values are null (a ladder name) or a dict of config overrides
    (`{"bert": null, "ratio4": {"head_ratio": 4, "conv_type": "sdconv", "linear_groups": 1}}`)."""
    text = (text or "").strip()
    if text.startswith("{"):
        try:
            entries = json.loads(text)
        except json.JSONDecodeError as e:
            raise ConfigError(f"--variants is not valid JSON ({e}); pass names separated by commas or a JSON "
                              "object {name: null or {config fields}}") from None
    else:
        entries = {name.strip(): None for name in text.split(",") if name.strip()}
    if not entries:
        raise ConfigError(f"--variants is empty; give ladder names ({DEFAULT_VARIANTS}) or a JSON object")
    variants = []
    for name, overrides in entries.items():
        _check_name(name)
        if overrides is None:
            if name not in LADDER:
                raise ConfigError(f"--variants: {name!r} is not a ladder step ({DEFAULT_VARIANTS}); give its "
                                  "config overrides as a JSON object")
            overrides = LADDER[name]
        variants.append(Variant(name, check_overrides(name, overrides)))
    return variants


def variant_hparams(base: Mapping, variant: Variant) -> dict:
    """Pretraining hparams of `variant`: `base`, its overrides added to model_hparam_overrides
    (where they win over the top-level head_ratio, conv_type, linear_groups, ...)."""
    values = dict(base)
    values["model_hparam_overrides"] = {**dict(base.get("model_hparam_overrides") or {}), **variant.overrides}
    return values


def reference_variants(variant: Variant) -> list[Variant]:
    """Where the initial weights of `variant` come from, in order: each ladder step's architecture
    over `variant`'s other overrides. A weight takes the value that the first of these with a weight
    of the same path and shape draws (see `initial_weights`), so that within a seed every variant
    starts from the same values wherever its shapes agree with another's."""
    return [Variant(name, {**variant.overrides, **architecture}) for name, architecture in LADDER.items()]
