"""One run of an ablation (a variant and a seed), in stages that a rerun skips once done.

  init         <run>/init/: the seed's shared initial weights and the batch digest (`init.py`)
  pretraining  `trainer.train` up to each eval step (`stop_at_step`), each followed by
               `trainer.evaluate` on the held-out records into <run>/eval/step-<N>.{txt,json}
  fine-tuning  `finetuning.run.run_finetuning` per task into <run>/results/<task>_results.{txt,json}
  result       <run>/result.json: what the report reads, with the paths of those files

An interrupted run resumes where it stopped, through the trainer's and the fine-tuning runner's
own resuming. <run>/run.json holds the run's pretraining hparams: a rerun under other hparams is
refused instead of being mixed into it. <run>/progress.json holds the train time of each chunk.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import sys
import time

import keras
import tensorflow as tf

from convbert_tf.ablation import init
from convbert_tf.ablation.settings import RunPlan
from convbert_tf.config import ConfigError
from convbert_tf import io
from convbert_tf.finetuning.run import run_finetuning
from convbert_tf.pretraining import run as trainer

RUN_RECORD = "run.json"
PROGRESS = "progress.json"
RESULT = "result.json"
EVAL_DIR = "eval"
# Hparams that are paths: they move with the output directory; every other one must match to resume.
_PATH_HPARAMS = ("pretrain_tfrecords", "eval_tfrecords", "vocab_file", "model_dir", "init_checkpoint", "results_txt")


class Preempted(Exception):
    """SIGTERM stopped pretraining after a checkpoint; rerunning the command resumes."""


class PrefixedOutput:
    """A text stream that writes each line of a run's log to `stream` behind a label."""

    def __init__(self, stream, label: str):
        self.stream, self.label, self.pending = stream, label, ""

    def write(self, text: str) -> int:
        self.pending += text
        *lines, self.pending = self.pending.split("\n")
        for line in lines:
            self.stream.write(f"[{self.label}] {line}\n")
        return len(text)

    def flush(self) -> None:
        self.stream.flush()


def _read_json(path: str):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def comparable_hparams(hp) -> dict:
    """A run's pretraining hparams as JSON values, without the paths."""
    values = json.loads(hp.to_json_string())
    return {k: v for k, v in values.items() if k not in _PATH_HPARAMS}


def plan_key(plan: RunPlan) -> str:
    """A digest of what a finished run's result depends on: its hparams, eval steps and fine-tuning."""
    content = {"pretraining": comparable_hparams(plan.hp), "eval_steps": list(plan.eval_steps),
               "finetuning": [json.loads(ft.to_json_string()) for ft in plan.finetuning]}
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()


def check_run_record(plan: RunPlan) -> None:
    """Writes <run>/run.json for a new run; refuses a run directory trained under other hparams."""
    path = os.path.join(plan.hp.model_dir, RUN_RECORD)
    wanted = {"variant": plan.variant.to_json(), "seed": plan.seed, "hparams": comparable_hparams(plan.hp)}
    if not os.path.exists(path):
        io.atomic_write_json(path, wanted)
        return
    saved = _read_json(path)["hparams"]
    current = wanted["hparams"]
    changed = sorted(k for k in set(saved) | set(current) if saved.get(k) != current.get(k))
    if changed:
        raise ConfigError(
            f"{plan.label}: {plan.hp.model_dir} was pretrained with other hparams ("
            + ", ".join(f"{k} {saved.get(k)!r} there vs {current.get(k)!r} now" for k in changed)
            + "); use another --output_dir, give the variant another name, or remove that directory")


def finished_result(plan: RunPlan) -> dict | None:
    """The run's result.json when it was finished under this very plan, else None."""
    path = os.path.join(plan.hp.model_dir, RESULT)
    if not os.path.exists(path):
        return None
    result = _read_json(path)
    return result if result.get("plan_key") == plan_key(plan) else None


def eval_path(model_dir: str, step: int) -> str:
    """The held-out metrics at `step` (trainer.evaluate writes them beside the .txt)."""
    return os.path.join(model_dir, EVAL_DIR, f"step-{step}.json")


def latest_step(model_dir: str) -> int:
    prefix = tf.train.latest_checkpoint(model_dir)
    return int(prefix.rsplit("-", 1)[1]) if prefix else 0


def finetuning_results_path(ft_hp) -> str:
    return os.path.join(ft_hp.model_dir, "results", f"{ft_hp.task_label}_results.json")


class RunExecution:
    """Runs or resumes the stages of one plan; `run()` returns its result record."""

    def __init__(self, plan: RunPlan, strategy, jit_compile: bool = False, out=sys.stdout):
        self.plan, self.strategy, self.jit_compile = plan, strategy, jit_compile
        self.out = PrefixedOutput(out, plan.label)
        self.progress_path = os.path.join(plan.hp.model_dir, PROGRESS)
        self.progress = {"train_seconds": {}, "finetuning": {}}
        if os.path.exists(self.progress_path):
            self.progress = _read_json(self.progress_path)

    def save_progress(self) -> None:
        io.atomic_write_json(self.progress_path, self.progress)

    def run(self) -> dict:
        plan = self.plan
        check_run_record(plan)
        record = init.read_init_record(plan.hp.model_dir)
        if record is None:
            self.out.write(f"initial weights and batch digest -> {os.path.join(plan.hp.model_dir, init.INIT_DIR)}\n")
            record = init.write_initial_checkpoint(plan.hp, plan.references, self.strategy)
        hp = dataclasses.replace(plan.hp, init_checkpoint=init.init_prefix(plan.hp.model_dir))
        for step in plan.eval_steps:
            self.pretrain_and_evaluate(hp, step)
        for ft_hp in plan.finetuning:
            self.finetune(ft_hp)
        result = self.result(record)
        io.atomic_write_json(os.path.join(plan.hp.model_dir, RESULT), result)
        return result

    def pretrain_and_evaluate(self, hp, step: int) -> None:
        """Trains to `step` (unless a checkpoint is there), then measures the held-out metrics."""
        path = eval_path(hp.model_dir, step)
        if os.path.exists(path):
            return
        reached = latest_step(hp.model_dir)
        if reached > step:
            raise ConfigError(f"{self.plan.label}: trained to step {reached} already, so it cannot be evaluated at "
                              f"step {step}; keep --num_eval_points as it was for {hp.model_dir}")
        if reached < step:
            begun = time.perf_counter()
            last = trainer.train(hp, self.strategy, jit_compile=self.jit_compile, out=self.out, stop_at_step=step)
            seconds = self.progress["train_seconds"]
            seconds[str(step)] = seconds.get(str(step), 0.0) + time.perf_counter() - begun
            self.save_progress()
            if last.get("preempted"):
                raise Preempted(f"{self.plan.label}: SIGTERM stopped pretraining at step {last.get('step')} after a "
                                "checkpoint; rerun the same command to resume")
        eval_hp = dataclasses.replace(hp, do_train=False, do_eval=True, results_txt=path[:-len(".json")] + ".txt")
        results = trainer.evaluate(eval_hp, self.strategy, out=self.out)
        if results["global_step"] != step:
            raise ConfigError(f"{self.plan.label}: the checkpoint evaluated is at step {results['global_step']}, "
                              f"not {step}")

    def finetune(self, ft_hp) -> None:
        """Fine-tunes one task unless this run did so with the same hparams."""
        task = ft_hp.task_label
        done = self.progress["finetuning"].get(task)
        if done and done["hparams"] == json.loads(ft_hp.to_json_string()) \
                and os.path.exists(finetuning_results_path(ft_hp)):
            return
        begun = time.perf_counter()
        run_finetuning(ft_hp, self.strategy, jit_compile=self.jit_compile, out=self.out)
        self.progress["finetuning"][task] = {"hparams": json.loads(ft_hp.to_json_string()),
                                             "seconds": time.perf_counter() - begun}
        self.save_progress()

    def result(self, record: dict) -> dict:
        """The run's record for the report, read from the files the trainer and the runner wrote."""
        plan, model_dir = self.plan, self.plan.hp.model_dir
        curve = []
        for step in plan.eval_steps:
            metrics = _read_json(eval_path(model_dir, step))
            curve.append({"step": step, "flops": step * plan.step_flops,
                          "file": os.path.relpath(eval_path(model_dir, step), model_dir), "metrics": metrics})
        finetuning = {}
        for ft_hp in plan.finetuning:
            path = finetuning_results_path(ft_hp)
            for name, entry in _read_json(path).items():
                finetuning[name] = {"median": entry["median"], "trials": len(entry["trials"]),
                                    "file": os.path.relpath(path, model_dir)}
        return {
            "variant": plan.variant.to_json(), "seed": plan.seed, "plan_key": plan_key(plan),
            "parameters": record["parameters"], "batch_digest": record["batch_digest"],
            "weights_from": record["weights_from"], "step_flops": plan.step_flops,
            "num_train_steps": plan.hp.num_train_steps, "pretraining_flops": plan.hp.num_train_steps * plan.step_flops,
            "train_seconds": sum(self.progress["train_seconds"].values()),
            "finetune_seconds": sum(entry["seconds"] for entry in self.progress["finetuning"].values()),
            "mixed_precision": keras.mixed_precision.global_policy().name,
            "curve": curve, "final": curve[-1]["metrics"], "finetuning": finetuning,
        }


def execute(plan: RunPlan, strategy, jit_compile: bool = False, out=sys.stdout) -> tuple[dict, bool]:
    """(the run's result, whether anything ran): a run finished under this plan is only read."""
    finished = finished_result(plan)
    if finished is not None:
        return finished, False
    return RunExecution(plan, strategy, jit_compile, out).run(), True
