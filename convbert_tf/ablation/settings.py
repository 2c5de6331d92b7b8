"""What an ablation runs: the presets of --model_size, the shared settings, and each run's plan.

Every run of an ablation (one variant, one seed) is an ordinary pretraining run
(`convbert_tf.pretraining.run`) in <output_dir>/runs/<variant>/seed-<seed>/, followed by
ordinary fine-tuning runs (`convbert_tf.finetuning.run`) from its checkpoint. All runs share
the base hparams of the preset; a variant changes only config fields, a seed only `seed`, and a
FLOP budget only `num_train_steps`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from typing import Mapping

from convbert_tf.ablation import budget
from convbert_tf.ablation.variants import ARCHITECTURE_KEYS, LADDER, Variant, reference_variants, variant_hparams
from convbert_tf.config import ConfigError
from convbert_tf.finetuning.hparams import FinetuningHParams, resolve_finetuning_hparams
from convbert_tf.pretraining.hparams import PretrainingHParams, resolve_hparams
from convbert_tf.run_hparams import MODEL_KEYS, parse_json_object

# --model_size presets: pretraining hparams over the original's defaults. "tiny" is the
# quickstart's model (2 layers, 128 wide, generator 32 wide, batch 32 x 128): minutes on a
# laptop. The released sizes take the original recipe (per-size values, 1M steps).
PRESETS = {
    "tiny": dict(model_size="small", embedding_size=64, max_seq_length=128, train_batch_size=32,
                 eval_batch_size=32, learning_rate=1e-3, num_train_steps=300, num_warmup_steps=30,
                 iterations_per_loop=10, save_checkpoints_steps=100, num_eval_steps=1000,
                 model_hparam_overrides=dict(hidden_size=128, num_hidden_layers=2, num_attention_heads=4,
                                             intermediate_size=512, max_position_embeddings=128)),
    "small": dict(model_size="small"),
    "medium-small": dict(model_size="medium-small"),
    "base": dict(model_size="base"),
}
# Fine-tuning hparams per preset, over the original's per-size and per-task values.
FINETUNING_PRESETS = {
    "tiny": dict(max_seq_length=64, train_batch_size=32, eval_batch_size=32, predict_batch_size=32,
                 learning_rate=1e-3, num_train_epochs=3.0, iterations_per_loop=10),
}
# Every ablation run: no SavedModel export at the end (fine-tuning starts from the checkpoints).
FIXED_HPARAMS = dict(export_at_end=False)
# Hparams the ablation sets itself, and where the user sets them instead.
MANAGED_HPARAMS = dict(
    seed="--seeds", num_train_steps="--num_train_steps or --flops_budget", model_dir="--output_dir",
    model_name="--output_dir", results_txt="--output_dir", init_checkpoint="nothing (each run starts from its "
    "seed's shared initial weights)", do_train="nothing", do_eval="nothing", vocab_file="--data_dir",
    **{key: "--variants" for key in ARCHITECTURE_KEYS})
MANAGED_FINETUNING_HPARAMS = dict(
    task_names="--finetune_tasks", num_trials="--finetune_trials", seed="--seeds", data_dir="--finetune_data_dir",
    model_dir="--output_dir", init_checkpoint="nothing (each run's own checkpoint)", vocab_file="--data_dir",
    **{key: "--variants or --model_size" for key in MODEL_KEYS})


def _refuse_managed(values: Mapping, managed: Mapping, flag: str) -> None:
    for key in sorted(set(values) & set(managed)):
        raise ConfigError(f"{flag}: {key!r} is set by the ablation; use {managed[key]}")


def base_hparams(model_size: str) -> tuple[str, dict]:
    """(preset name, base pretraining hparams) of --model_size: a preset name, or a JSON object of
    pretraining hparams over the preset its "model_size" names (default "tiny")."""
    text = (model_size or "").strip()
    user = parse_json_object(text, "--model_size") if text.startswith("{") else {"model_size": text}
    preset = user.pop("model_size", "tiny")
    if preset not in PRESETS:
        raise ConfigError(f"--model_size: {preset!r} is not one of the presets {list(PRESETS)} (or a JSON object "
                          "of pretraining hparams)")
    _refuse_managed(user, MANAGED_HPARAMS, "--model_size")
    values = {**PRESETS[preset], **FIXED_HPARAMS, **user}
    values["model_hparam_overrides"] = {**PRESETS[preset].get("model_hparam_overrides", {}),
                                        **user.get("model_hparam_overrides", {})}
    if not values.get("electra_objective", True) or values.get("uniform_generator"):
        raise ConfigError("--model_size: the ablation compares models pretrained with ELECTRA's objective and a "
                          "generator network; electra_objective must be true and uniform_generator false")
    if values.get("disc_weight", 1.0) <= 0:
        raise ConfigError("--model_size: disc_weight must be positive (the discriminator's metrics are reported)")
    return preset, values


def finetuning_base(preset: str, finetune_hparams: str) -> dict:
    """Base fine-tuning hparams: the preset's, then --finetune_hparams (a JSON object)."""
    user = parse_json_object(finetune_hparams or "{}", "--finetune_hparams")
    _refuse_managed(user, MANAGED_FINETUNING_HPARAMS, "--finetune_hparams")
    return {**FINETUNING_PRESETS.get(preset, {}), **user}


@dataclasses.dataclass(frozen=True)
class AblationSettings:
    """Everything an ablation runs; built by `experiment.main` from the flags."""

    output_dir: str
    """Receives runs/, the report and its plots."""
    data_dir: str
    """The pretraining data: vocab.txt and pretrain_tfrecords/ (the last file held out)."""
    preset: str
    """The --model_size preset the base hparams start from."""
    pretraining: Mapping
    """Base pretraining hparams: every run's, before its variant, seed and steps."""
    variants: tuple
    """The Variants, in report order."""
    seeds: tuple
    """Seeds; each seeds init, data order, masking, sampling and dropout of every variant alike."""
    num_train_steps: int | None = None
    """Equal steps for every variant (None: the preset's, unless flops_budget)."""
    flops_budget: str | None = None
    """--flops_budget: every variant trains the steps that spend these pretraining FLOPs."""
    num_eval_points: int = 4
    """Held-out evaluations per run, spread evenly over its steps (the curves' points)."""
    finetune_data_dir: str | None = None
    """The data_dir whose finetuning_data/<task>/ holds the fine-tuning tasks."""
    finetune_tasks: tuple = ()
    """Fine-tuning tasks, each scored on its dev set after pretraining."""
    finetuning: Mapping = dataclasses.field(default_factory=dict)
    """Base fine-tuning hparams (the preset's and --finetune_hparams)."""
    finetune_trials: int = 1
    """Fine-tuning trials per task and run; the median is reported, as ELECTRA reports."""
    jit_compile: bool = False
    """Compile each train step with XLA."""


@dataclasses.dataclass(frozen=True)
class RunPlan:
    """One run of an ablation: a variant pretrained with one seed, then fine-tuned."""

    variant: Variant
    seed: int
    hp: PretrainingHParams
    """Its pretraining hparams; hp.model_dir is the run's directory."""
    step_flops: float
    """Pretraining FLOPs of one step."""
    eval_steps: tuple
    """Steps at which the held-out metrics are measured; the last is hp.num_train_steps."""
    references: tuple
    """(name, PretrainingHParams) whose initial weights the run shares (`init.initial_weights`)."""
    finetuning: tuple = ()
    """FinetuningHParams, one per task."""

    @property
    def label(self) -> str:
        return f"{self.variant.name} seed {self.seed}"


def run_dir(output_dir: str, variant_name: str, seed: int) -> str:
    return os.path.join(output_dir, "runs", variant_name, f"seed-{seed}")


def pretraining_hparams(settings: AblationSettings, variant: Variant, seed: int,
                        num_train_steps: int | None = None) -> PretrainingHParams:
    """A run's pretraining hparams: the base, the variant's config fields, the seed and the steps."""
    values = variant_hparams(settings.pretraining, variant)
    values.update(seed=seed, model_dir=run_dir(settings.output_dir, variant.name, seed))
    if num_train_steps is not None:
        values["num_train_steps"] = num_train_steps
    try:
        return resolve_hparams(values, data_dir=settings.data_dir)
    except ConfigError as e:
        raise ConfigError(f"variant {variant.name!r}: {e}") from None


def finetuning_hparams(settings: AblationSettings, hp: PretrainingHParams, task: str) -> FinetuningHParams:
    """Fine-tuning one task from a run's checkpoint, with that run's model fields and seed."""
    model = {key: getattr(hp, key) for key in MODEL_KEYS + ("do_lower_case", "strip_accents")}
    model["model_hparam_overrides"] = dict(hp.model_hparam_overrides)
    values = {**settings.finetuning, **model, "task_names": [task], "num_trials": settings.finetune_trials,
              "seed": hp.seed, "model_dir": hp.model_dir, "init_checkpoint": hp.model_dir,
              "vocab_file": hp.vocab_file, "export": False, "write_test_outputs": False}
    return resolve_finetuning_hparams(values, data_dir=settings.finetune_data_dir)


def train_steps(settings: AblationSettings) -> tuple[dict, dict]:
    """({variant: steps}, {variant: FLOPs per step}): equal steps, or the steps of the FLOP budget.

    A budget of `<name>:<steps>` may name any ladder step, also one that is not among the variants
    (so that variants added later to an ablation of `bert:N` get the same budget without bert)."""
    probes = {v.name: pretraining_hparams(settings, v, settings.seeds[0], settings.num_train_steps)
              for v in settings.variants}
    flops = {name: budget.step_flops(hp) for name, hp in probes.items()}
    if settings.flops_budget is None:
        return {name: hp.num_train_steps for name, hp in probes.items()}, flops
    references = dict(flops)
    for name, architecture in LADDER.items():
        if name not in references:
            with contextlib.suppress(ConfigError):
                references[name] = budget.step_flops(pretraining_hparams(settings, Variant(name, architecture),
                                                                         settings.seeds[0]))
    return budget.matched_steps(budget.parse_flops_budget(settings.flops_budget, references), flops), flops


def plan_runs(settings: AblationSettings) -> list:
    """Every run of the ablation, seed by seed and within a seed every variant in order: an
    interrupted ablation has whole seeds to compare, and no variant runs only first in the process."""
    steps, flops = train_steps(settings)
    plans = []
    for seed in settings.seeds:
        for variant in settings.variants:
            hp = pretraining_hparams(settings, variant, seed, steps[variant.name])
            plans.append(RunPlan(
                variant=variant, seed=seed, hp=hp, step_flops=flops[variant.name],
                eval_steps=tuple(budget.eval_steps(hp.num_train_steps, settings.num_eval_points)),
                references=tuple(_references(settings, variant, hp)),
                finetuning=tuple(finetuning_hparams(settings, hp, task) for task in settings.finetune_tasks)))
    return plans


def _references(settings: AblationSettings, variant: Variant, hp: PretrainingHParams) -> list:
    """(name, hparams) of the ladder's architectures over the variant; those whose config is not
    valid (e.g. heads that head_ratio does not divide) have no weights to share and are left out."""
    references = []
    for reference in reference_variants(variant):
        try:
            references.append((reference.name, pretraining_hparams(settings, reference, hp.seed,
                                                                    hp.num_train_steps)))
        except ConfigError:
            continue
    return references
