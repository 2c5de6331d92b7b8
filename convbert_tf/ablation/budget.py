"""Pretraining compute of a variant: FLOPs per step, steps for a FLOP budget, and the eval points.

The FLOPs are those of `convbert_tf.flops.electra_step_flops` (matmul-like work of the
generator, its MLM head, the discriminator and its head; forward + backward = 3 x forward)
per token, times the B x T tokens of a step.
"""

from __future__ import annotations

from typing import Mapping

from convbert_tf.config import ConfigError
from convbert_tf.flops import electra_step_flops
from convbert_tf.pretraining.hparams import PretrainingHParams


def step_flops(hp: PretrainingHParams) -> float:
    """Train FLOPs of one ELECTRA pretraining step of `hp` (the global batch)."""
    per_token = electra_step_flops(hp.model_config(), hp.generator_config(), hp.max_seq_length,
                                   hp.predictions_per_seq)
    return per_token * hp.train_batch_size * hp.max_seq_length


def parse_flops_budget(text: str, flops_per_step: Mapping[str, float]) -> float:
    """--flops_budget: a number of FLOPs (`3e15`), or `<variant>:<steps>`, the FLOPs that variant
    spends in that many steps (`bert:1000000`)."""
    text = text.strip()
    if ":" in text:
        name, _, steps = text.partition(":")
        if name not in flops_per_step:
            raise ConfigError(f"--flops_budget={text}: {name!r} is neither a variant nor a ladder step "
                              f"({', '.join(flops_per_step)})")
        try:
            count = int(steps)
        except ValueError:
            raise ConfigError(f"--flops_budget={text}: {steps!r} is not a whole number of steps") from None
        if count < 1:
            raise ConfigError(f"--flops_budget={text}: the steps must be at least 1")
        return count * flops_per_step[name]
    try:
        budget = float(text)
    except ValueError:
        raise ConfigError(f"--flops_budget={text!r} is neither a number of FLOPs (e.g. 3e15) nor "
                          "<variant>:<steps> (e.g. bert:1000000)") from None
    if not budget > 0:
        raise ConfigError(f"--flops_budget must be positive, got {text}")
    return budget


def matched_steps(budget: float, flops_per_step: Mapping[str, float]) -> dict:
    """{variant: the most steps whose FLOPs fit the budget}; an error when one step does not fit."""
    steps = {}
    for name, flops in flops_per_step.items():
        steps[name] = int(budget // flops)
        if steps[name] < 1:
            raise ConfigError(f"--flops_budget {budget:.3g} is less than one step of {name!r} ({flops:.3g} FLOPs)")
    return steps


def eval_steps(num_train_steps: int, num_points: int) -> list:
    """The steps at which the held-out metrics are measured: `num_points` spread evenly, the last
    at num_train_steps (fewer when there are fewer steps)."""
    if num_points < 1:
        raise ConfigError(f"--num_eval_points must be at least 1, got {num_points}")
    return sorted({max(1, round(num_train_steps * k / num_points)) for k in range(1, num_points + 1)})
