"""What learning rate each variable gets: the warmup-times-polynomial-decay schedule and the
layerwise multipliers of fine-tuning.

Reference: ELECTRA's `model/optimization.py` (`create_optimizer`, `_get_layer_lrs`), which the
ConvBERT release (yitu-opensource/ConvBert) reuses. Two of its oddities are kept on purpose: the
warmup factor multiplies the already-decaying rate, and (optionally) the layerwise exponent is
off by one (google-research/electra#51).
"""

from __future__ import annotations

import re
from typing import Iterable

import keras
import tensorflow as tf

from convbert_tf.training.optimizer import variable_path

_PACKAGE = "convbert_tf"

# Default path patterns of `layerwise_lr_multipliers`.
DEFAULT_EMBEDDINGS_PATTERN = r"embeddings"
DEFAULT_LAYER_PATTERN = r"(?:^|/)layer_(\d+)(?:/|$)"


@keras.saving.register_keras_serializable(package=_PACKAGE)
class WarmupPolynomialDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Polynomial decay to zero, multiplied by a linear warmup (as the original's).

    lr(t) = lr₀ · (1 − min(t, T)/T)^power · min(1, t/W), W = max(T·warmup_proportion,
    warmup_steps). The warmup factor multiplies the already-decaying rate, so the peak
    (at t = W) is lr₀·(1 − W/T)^power, not lr₀, exactly as in the original. With W = 0 the
    warmup factor is 1. t is the optimizer's step count before the update, so the first
    update (t = 0) uses lr 0 whenever W > 0, also as in the original.

    Args:
        initial_learning_rate: lr₀.
        num_train_steps: T, the step at which the rate reaches 0 (and stays there).
        warmup_steps: lower bound on W in steps.
        warmup_proportion: lower bound on W as a fraction of T.
        power: exponent of the decay; 1.0 is linear decay (the original's default).
        name: optional name.
    """

    def __init__(
        self,
        initial_learning_rate: float,
        num_train_steps: int,
        warmup_steps: int = 0,
        warmup_proportion: float = 0.0,
        power: float = 1.0,
        name: str | None = None,
    ):
        if num_train_steps <= 0:
            raise ValueError(
                f"WarmupPolynomialDecay: num_train_steps must be > 0, got {num_train_steps}."
            )
        if warmup_steps < 0 or warmup_proportion < 0:
            raise ValueError(
                "WarmupPolynomialDecay: warmup_steps and warmup_proportion must be >= 0, got "
                f"warmup_steps={warmup_steps}, warmup_proportion={warmup_proportion}."
            )
        if power < 0:
            raise ValueError(f"WarmupPolynomialDecay: power must be >= 0, got {power}.")
        self.initial_learning_rate = float(initial_learning_rate)
        self.num_train_steps = int(num_train_steps)
        self.warmup_steps = int(warmup_steps)
        self.warmup_proportion = float(warmup_proportion)
        self.power = float(power)
        self.name = name

    @property
    def warmup_length(self) -> float:
        """W = max(T · warmup_proportion, warmup_steps), in steps (may be fractional)."""
        return max(self.num_train_steps * self.warmup_proportion, float(self.warmup_steps))

    def __call__(self, step):
        with tf.name_scope(self.name or "WarmupPolynomialDecay"):
            step = tf.cast(step, tf.float32)  # []
            total = float(self.num_train_steps)
            decay = tf.pow(1.0 - tf.minimum(step, total) / total, self.power)  # []
            learning_rate = self.initial_learning_rate * decay  # []
            if self.warmup_length > 0:
                learning_rate *= tf.minimum(1.0, step / self.warmup_length)  # []
            return learning_rate

    def get_config(self):
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "num_train_steps": self.num_train_steps,
            "warmup_steps": self.warmup_steps,
            "warmup_proportion": self.warmup_proportion,
            "power": self.power,
            "name": self.name,
        }


def layerwise_lr_multipliers(
    variable_paths: Iterable[str],
    num_layers: int,
    decay: float,
    reproduce_original_off_by_one: bool = False,
    *,
    embeddings_pattern: str = DEFAULT_EMBEDDINGS_PATTERN,
    layer_pattern: str = DEFAULT_LAYER_PATTERN,
    head_pattern: str | None = None,
) -> dict[str, float]:
    """Learning-rate multiplier per variable for layerwise LR decay (ELECTRA's `_get_layer_lrs`).

    Each path gets a depth, tried in this order:
      * `embeddings_pattern` found (re.search; default `embeddings`, which also covers the
        embedding projection `embeddings_project`): depth 0;
      * `layer_pattern` found, its first group an encoder layer index i (default: a path
        component `layer_<i>`): depth i + 1; i must be < num_layers;
      * otherwise a head/task variable: depth L + 1 (L + 2 with the original's off-by-one).
        With `head_pattern` given, only paths matching it are heads and any other path
        is a ValueError that names it.
    The multiplier is decay^(top − depth), top being the heads' depth, so heads get 1.0.
    Fixed (default): top = L + 1, the top encoder layer gets decay¹.
    `reproduce_original_off_by_one=True`: top = L + 2 as in the original, so the top
    encoder layer gets decay² and depth L + 1 is empty (google-research/electra#51).

    Args:
        variable_paths: variable paths (strings, or variables, whose `path` is used).
        num_layers: L, the number of encoder layers.
        decay: the layerwise decay factor, in (0, 1].
        reproduce_original_off_by_one: use the original's exponent L + 2 − depth.
        embeddings_pattern, layer_pattern, head_pattern: regexes as described above.

    Returns:
        {path: multiplier}, ready for `AdamWeightDecay(lr_multipliers=...)`.
    """
    if num_layers < 1:
        raise ValueError(f"layerwise_lr_multipliers: num_layers must be >= 1, got {num_layers}.")
    if not 0.0 < decay <= 1.0:
        raise ValueError(f"layerwise_lr_multipliers: decay must be in (0, 1], got {decay}.")
    embeddings_regex = re.compile(embeddings_pattern)
    layer_regex = re.compile(layer_pattern)
    if layer_regex.groups < 1:
        raise ValueError(
            f"layerwise_lr_multipliers: layer_pattern {layer_pattern!r} needs a group "
            "capturing the layer index, like r'layer_(\\d+)'."
        )
    head_regex = None if head_pattern is None else re.compile(head_pattern)
    top_depth = num_layers + (2 if reproduce_original_off_by_one else 1)

    multipliers = {}
    for item in variable_paths:
        path = item if isinstance(item, str) else variable_path(item)
        layer_match = layer_regex.search(path)
        if embeddings_regex.search(path):
            depth = 0
        elif layer_match:
            index = int(layer_match.group(1))
            if index >= num_layers:
                raise ValueError(
                    f"layerwise_lr_multipliers: variable {path!r} is in encoder layer {index} "
                    f"but num_layers is {num_layers}."
                )
            depth = index + 1
        elif head_regex is None or head_regex.search(path):
            depth = top_depth
        else:
            raise ValueError(
                f"layerwise_lr_multipliers: variable {path!r} matches neither embeddings "
                f"({embeddings_pattern!r}), an encoder layer ({layer_pattern!r}) nor a head "
                f"({head_pattern!r}); give it a depth by adjusting these patterns."
            )
        multipliers[path] = float(decay ** (top_depth - depth))
    return multipliers
