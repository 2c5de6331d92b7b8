"""An ablation from start to end: its data, every run of every variant and seed, then the report."""

from __future__ import annotations

import dataclasses
import json
import os
import sys

from convbert_tf.ablation import data, plots, report, runs
from convbert_tf.ablation.settings import AblationSettings, base_hparams, finetuning_base, plan_runs
from convbert_tf.ablation.variants import BASELINE, parse_variants
from convbert_tf.config import ConfigError
from convbert_tf import io
from convbert_tf.run_guard import model_dir_lock

REPORT_MARKDOWN = "report.md"
REPORT_JSON = "report.json"
LOSS_PLOT = "loss_vs_flops.png"
DEV_PLOT = "dev_scores.png"
SETTINGS_RECORD = "ablation.json"
LOCK_FILE = ".ablation.run.lock"


def parse_seeds(seeds) -> tuple:
    """--seeds as distinct ints, in the order given."""
    try:
        values = [int(s) for s in seeds if str(s).strip()]
    except ValueError:
        raise ConfigError(f"--seeds must be whole numbers separated by commas, got {','.join(map(str, seeds))}") \
            from None
    if not values or len(set(values)) != len(values) or min(values) < 0:
        raise ConfigError(f"--seeds must be distinct non-negative whole numbers, got {values}")
    return tuple(values)


def make_settings(*, output_dir: str, corpus_dir: str | None = None, data_dir: str | None = None,
                  variants: str, model_size: str = "tiny", num_train_steps: int | None = None,
                  flops_budget: str | None = None, seeds=("0",), num_eval_points: int = 4, finetune_tasks=(),
                  finetune_data_dir: str | None = None, finetune_hparams: str = "{}", finetune_trials: int = 1,
                  vocab_size: int = 4000, num_data_files: int = 5, jit_compile: bool = False,
                  log=print) -> AblationSettings:
    """Checks the options and prepares the data (built from corpus_dir into <output_dir>/data)."""
    if bool(corpus_dir) == bool(data_dir):
        raise ConfigError("give exactly one of --corpus_dir (text files) and --data_dir (vocab.txt and "
                          "pretrain_tfrecords/ of build_pretraining_dataset.py)")
    if num_train_steps is not None and flops_budget is not None:
        raise ConfigError("give at most one of --num_train_steps (equal steps) and --flops_budget (equal FLOPs)")
    if num_train_steps is not None and num_train_steps < 1:
        raise ConfigError(f"--num_train_steps must be at least 1, got {num_train_steps}")
    if finetune_trials < 1:
        raise ConfigError(f"--finetune_trials must be at least 1, got {finetune_trials}")
    output_dir = os.path.abspath(output_dir)
    preset, pretraining = base_hparams(model_size)
    if corpus_dir:
        if not os.path.isdir(corpus_dir):
            raise ConfigError(f"--corpus_dir {corpus_dir} is not a directory")
        data_dir = data.build_data(corpus_dir, os.path.join(output_dir, "data"), vocab_size,
                                   pretraining.get("max_seq_length", 128), num_data_files, log=log)
    elif not os.path.isdir(data_dir):
        raise ConfigError(f"--data_dir {data_dir} is not a directory")
    data_dir = os.path.abspath(data_dir)
    pretraining.setdefault("vocab_size", data.vocab_size(data_dir))
    finetune_data_dir = os.path.abspath(finetune_data_dir or data_dir)
    return AblationSettings(
        output_dir=output_dir, data_dir=data_dir, preset=preset, pretraining=pretraining,
        variants=tuple(parse_variants(variants)), seeds=parse_seeds(seeds), num_train_steps=num_train_steps,
        flops_budget=flops_budget, num_eval_points=num_eval_points, finetune_data_dir=finetune_data_dir,
        finetune_tasks=data.finetune_tasks(finetune_tasks, finetune_data_dir),
        finetuning=finetuning_base(preset, finetune_hparams), finetune_trials=finetune_trials,
        jit_compile=jit_compile)


def settings_record(settings: AblationSettings, plans) -> dict:
    """The settings and every run's steps, FLOPs and directory, as written to ablation.json."""
    values = dataclasses.asdict(settings)
    values["variants"] = [v.to_json() for v in settings.variants]
    values["runs"] = [{"variant": p.variant.name, "seed": p.seed, "num_train_steps": p.hp.num_train_steps,
                       "step_flops": p.step_flops, "eval_steps": list(p.eval_steps), "dir": p.hp.model_dir}
                      for p in plans]
    return json.loads(json.dumps(values, default=list))


def run_ablation(settings: AblationSettings, strategy, out=sys.stdout) -> dict:
    """Runs (or resumes, or only reads) every run, then writes the report. Returns
    {"report": the report dict, "ran": labels of the runs that did work, "reused": those only read}."""
    os.makedirs(settings.output_dir, exist_ok=True)
    with model_dir_lock(settings.output_dir, LOCK_FILE, elsewhere="use another --output_dir"):
        plans = plan_runs(settings)
        io.atomic_write_json(os.path.join(settings.output_dir, SETTINGS_RECORD), settings_record(settings, plans))
        results, ran, reused = [], [], []
        for number, plan in enumerate(plans, 1):
            print(f"== run {number}/{len(plans)}: {plan.label}, {plan.hp.num_train_steps} steps of "
                  f"{plan.step_flops:.3g} FLOPs -> {plan.hp.model_dir}", file=out, flush=True)
            result, did_work = runs.execute(plan, strategy, settings.jit_compile, out)
            (ran if did_work else reused).append(plan.label)
            if not did_work:
                print(f"   finished by an earlier invocation; reusing {runs.RESULT}", file=out, flush=True)
            results.append(result)
        summary = write_report(settings, results, out)
    return {"report": summary, "ran": ran, "reused": reused}


def report_notes(settings: AblationSettings, results, aggregated: dict) -> list:
    """The lines above the tables: what was run and how to read it."""
    steps = {r["variant"]["name"]: r["num_train_steps"] for r in results}
    budget = (f"equal FLOPs ({settings.flops_budget})" if settings.flops_budget
              else "equal steps")
    same = aggregated["identical_batches"]
    notes = [f"# Ablation: {', '.join(v.name for v in settings.variants)}", "",
             f"Preset `{settings.preset}`; {budget}: " + ", ".join(f"{name} {n:,} steps" for name, n in steps.items())
             + f"; seeds {', '.join(map(str, settings.seeds))}.",
             "Held-out metrics of the last step, on held-out records (disc AUC is the exact AUC over real "
             "tokens); pretraining FLOPs as counted by `convbert_tf.flops`; wall time is the pretraining calls "
             "(each of the runs' chunks between eval points includes its start-up).",
             "Identical masked batches for every variant within each seed (digest of the first batches): "
             + ", ".join(f"seed {seed} {'yes' if ok else 'NO'}" for seed, ok in same.items()) + "."]
    if settings.finetune_tasks:
        notes.append(f"Dev scores: the median over {settings.finetune_trials} fine-tuning trial(s) per run.")
    return notes


def write_report(settings: AblationSettings, results, out=sys.stdout) -> dict:
    """report.md (printed too), report.json and the PNGs in output_dir; returns the report dict."""
    names = [v.name for v in settings.variants]
    baseline = BASELINE if BASELINE in names else names[0]
    aggregated = report.aggregate(results, names, baseline)
    columns = report.report_columns(results)
    loss_plot = plots.plot_loss_vs_flops(results, names, os.path.join(settings.output_dir, LOSS_PLOT))
    dev_plot = plots.plot_dev_scores(aggregated, os.path.join(settings.output_dir, DEV_PLOT))
    text = report.markdown(aggregated, columns, report_notes(settings, results, aggregated))
    text += f"\n![held-out discriminator loss against FLOPs]({LOSS_PLOT})\n"
    if dev_plot:
        text += f"\n![dev scores]({DEV_PLOT})\n"
    aggregated["runs"] = [{"variant": r["variant"]["name"], "seed": r["seed"],
                           "result": os.path.join("runs", r["variant"]["name"], f"seed-{r['seed']}", runs.RESULT)}
                          for r in results]
    aggregated["plots"] = [os.path.basename(p) for p in (loss_plot, dev_plot) if p]
    io.atomic_write_json(os.path.join(settings.output_dir, REPORT_JSON), aggregated)
    io.atomic_write_text(os.path.join(settings.output_dir, REPORT_MARKDOWN), text)
    print("\n" + text, file=out, flush=True)
    return aggregated


def main(*, strategy: str = "auto", tpu: str | None = None, tpu_zone: str | None = None,
         gcp_project: str | None = None, mixed_precision: str = "auto", out=sys.stdout, **options) -> int:
    """The command behind `python -m convbert_tf.ablation`; `options` are make_settings' arguments.

    Returns the exit code: 0 done, or 75 when SIGTERM stopped a run after a checkpoint (rerun the
    command to resume). Errors propagate (the entry point maps them to exit codes, `cli.errors`).
    """
    from convbert_tf.training.distribute import get_strategy, set_mixed_precision
    from convbert_tf.run_guard import PREEMPTED_EXIT_CODE

    settings = make_settings(log=lambda line: print(line, file=out, flush=True), **options)
    chosen = get_strategy(strategy, tpu, tpu_zone, gcp_project)
    set_mixed_precision(mixed_precision, chosen)
    try:
        run_ablation(settings, chosen, out)
    except runs.Preempted as e:
        print(f"stopped: {e}", file=sys.stderr, flush=True)
        return PREEMPTED_EXIT_CODE
    return 0
