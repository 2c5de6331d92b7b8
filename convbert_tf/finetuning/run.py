"""A fine-tuning run: data, trials, training, dev scoring, test outputs and exports."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys

import keras
import numpy as np
import tensorflow as tf

from convbert_tf.checkpoints import CONFIG_FILENAME, random_state_variables
from convbert_tf.config import ConfigError
from convbert_tf.data.tokenization import BertTokenizer
from convbert_tf.training.distribute import is_chief
from convbert_tf.finetuning import outputs as outputs_lib
from convbert_tf.finetuning.examples import DataError, DataStats, stack_model_inputs
from convbert_tf.finetuning.export import export_task
from convbert_tf.finetuning.hparams import FinetuningHParams
from convbert_tf.finetuning.tasks.registry import get_task
from convbert_tf.finetuning.trainer import Trainer, train_steps
from convbert_tf.io import atomic_write_json
from convbert_tf.models.finetuning import FinetuningModel
from convbert_tf.run_guard import (TRIAL_INTERRUPTED_WRITE_PATTERNS, check_model_dir_writable, check_saved_config,
                                   checkpoint_bytes, model_dir_lock, remove_interrupted_writes)
from convbert_tf.training import checkpointing
from convbert_tf.training.learning_rates import WarmupPolynomialDecay, layerwise_lr_multipliers
from convbert_tf.training.loss_scale import loss_scale_for_global_policy
from convbert_tf.training.optimizer import build_optimizer

# Written into a trial's directory when the trial has finished (trained, scored, written out):
# its hparams and dev results, so that a rerun of the same run reuses them instead of
# training the trial again (its weights may be gone: keep_all_models=false), and a rerun with
# other hparams or data (a digest of the training features and dev examples) trains it afresh
# instead of resuming weights trained with the old ones.
TRIAL_RESULTS_FILENAME = "trial_results.json"
# Hparams that do not change what a finished trial produced.
_HPARAMS_NOT_IN_TRIAL = ("num_trials", "keep_all_models", "log_examples")


class FinetuningRun:
    """Reads and featurizes every task once, then runs the trials."""

    def __init__(self, hp: FinetuningHParams, strategy: tf.distribute.Strategy, jit_compile=False, out=sys.stdout):
        self.hp, self.strategy, self.jit_compile, self.out = hp, strategy, jit_compile, out
        self.config = hp.model_config()

        def read(path):
            tokenizer = BertTokenizer.from_vocab_file(path, hp.do_lower_case, hp.strip_accents)
            return tokenizer, tokenizer.vocab_size

        self.tokenizer = checkpointing.checked_vocab(hp.vocab_file, self.config.vocab_size, read,
                                                     "set \"vocab_file\" in --hparams")
        try:
            self.tasks = [get_task(name, hp.chunk_span_rule) for name in hp.task_names]
        except ValueError as e:
            raise ConfigError(str(e)) from None
        self.init_prefix = checkpointing.check_init_checkpoint(hp.init_checkpoint)
        if self.init_prefix is None:
            self.log("init_checkpoint is \"random\": fine-tuning from random weights, as asked")
        self.run_dir = os.path.join(hp.model_dir, "finetuning_models")
        # Under a multi-worker strategy every worker trains, scores and saves (saving may need
        # all of them), but only the chief writes into model_dir; the others write into a
        # throwaway directory per trial.
        self.chief = is_chief(strategy)
        self.results_dir = os.path.join(hp.model_dir, "results")
        self._data_digest = None

    def log(self, message):
        print(message, file=self.out, flush=True)

    def trial_dir(self, trial: int) -> str:
        return os.path.join(self.run_dir, f"{self.hp.task_label}_model_{trial}")

    def check_run_dir(self) -> None:
        """Refuses an unwritable or full run directory, or trial directories of another configuration."""
        check_model_dir_writable(self.run_dir, 2 * checkpoint_bytes([self.config]))
        for trial in range(1, self.hp.num_trials + 1):
            check_saved_config(self.trial_dir(trial), self.config, "remove that directory to fine-tune this "
                               "configuration, or use another --model_name")

    # ----- data ------------------------------------------------------------------------------
    def read(self, task, split):
        stats = DataStats()
        examples = task.read_examples(self.hp.data_dir, split, tfds_data_dir=self.hp.tfds_data_dir,
                                      double_unordered=self.hp.double_unordered and split == "train", stats=stats,
                                      skip_bad_rows=self.hp.skip_bad_rows, skip_bad_answers=self.hp.skip_bad_answers)
        if self.hp.debug:
            examples = examples[:100]
        is_training = split == "train"
        try:
            features = task.featurize(examples, self.tokenizer, self.hp.max_seq_length, is_training, stats=stats,
                                      **task.featurize_options(self.hp))
        except DataError:
            raise
        except ValueError as e:  # sizes that cannot work, e.g. no room for a QA document
            raise ConfigError(f"{task.name}: {e}") from None
        note = f", {stats.truncated} truncated to max_seq_length {self.hp.max_seq_length}" if stats.truncated else ""
        self.log(f"{task.name} {split}: {len(examples)} examples, {len(features)} features{note}")
        return examples, features

    def training_arrays(self):
        parts = []
        for task_id, task in enumerate(self.tasks):
            _, features = self.read(task, "train")
            parts.append(stack_model_inputs(features, task_id))
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}

    # ----- one trial -------------------------------------------------------------------------
    def build(self, num_steps):
        """The trial's model (from the pretrained encoder), optimizer and loss scale, under the strategy."""
        hp = self.hp
        with self.strategy.scope():
            encoder = checkpointing.load_pretrained_encoder(self.init_prefix, self.config)
            model = FinetuningModel(encoder, self.tasks, beam_size=hp.beam_size, joint_prediction=hp.joint_prediction,
                                    answerable_classifier=hp.answerable_classifier,
                                    answerable_uses_start_logits=hp.answerable_uses_start_logits,
                                    answerable_weight=hp.answerable_weight)
            variables = model.trainable_variables
            multipliers = layerwise_lr_multipliers(
                [v.path for v in variables], self.config.num_hidden_layers, hp.layerwise_lr_decay,
                reproduce_original_off_by_one=hp.layerwise_lr_original_off_by_one)
            schedule = WarmupPolynomialDecay(hp.learning_rate, max(num_steps, 1),
                                             warmup_proportion=hp.warmup_proportion)
            optimizer = build_optimizer(schedule, variables, hp.weight_decay_rate, multipliers)
            loss_scale = loss_scale_for_global_policy()
        return model, optimizer, loss_scale

    def trial_hparams(self) -> dict:
        """The hparams that decide a trial's outcome, as JSON values."""
        values = json.loads(self.hp.to_json_string())
        return {k: v for k, v in values.items() if k not in _HPARAMS_NOT_IN_TRIAL}

    def data_digest(self, train_arrays) -> str:
        """A digest of what a trial learns from and is scored on: the training features (all
        tasks) and, when it scores, every task's dev examples. Computed once per run."""
        if self._data_digest is None:
            digest = hashlib.sha256()
            for key in sorted(train_arrays or {}):
                digest.update(key.encode())
                digest.update(np.ascontiguousarray(train_arrays[key]).tobytes())
            if self.hp.do_eval:
                for task in self.tasks:
                    for split in [s for s in task.splits() if s.startswith("dev")]:
                        digest.update(f"{task.name}/{split}".encode())
                        for example in task.read_examples(self.hp.data_dir, split,
                                                          tfds_data_dir=self.hp.tfds_data_dir):
                            digest.update(repr(example).encode())
            self._data_digest = digest.hexdigest()
        return self._data_digest

    def earlier_trial(self, trial: int, train_arrays) -> tuple[dict | None, bool]:
        """(dev results to reuse, start afresh) from this trial's record of an earlier run.

        Same hparams and data: its results, reused. Other hparams or data: None and True, since
        its weights (kept for the last trial, or with keep_all_models) were trained on those and
        must not be resumed. No readable record: None and False (an unfinished trial resumes
        from its latest checkpoint).
        """
        path = os.path.join(self.trial_dir(trial), TRIAL_RESULTS_FILENAME)
        if not self.hp.do_train or not os.path.exists(path):
            return None, False
        try:
            with open(path, encoding="utf-8") as f:
                record = json.load(f)
            saved, saved_data, results = record["hparams"], record.get("data"), record["results"]
        except (OSError, ValueError, KeyError, TypeError) as e:
            self.log(f"trial {trial}: ignoring unreadable {path} ({e}); running the trial")
            return None, False
        current = self.trial_hparams()
        changed = sorted(k for k in set(saved) | set(current) if saved.get(k) != current.get(k))
        if changed:
            self.log(f"trial {trial}: finished before with other hparams ({', '.join(changed)}); running it again "
                     "from the pretrained weights")
            return None, True
        if saved_data != self.data_digest(train_arrays):
            self.log(f"trial {trial}: finished before on other data (the training features or the dev examples "
                     "differ); running it again from the pretrained weights")
            return None, True
        self.log(f"trial {trial}: finished by an earlier run with these hparams; its results are reused "
                 f"from {path} (delete that file to run the trial again)")
        return results, False

    def discard_trial(self, trial: int) -> None:
        """Chief: removes a finished trial's weights, then its record, before it runs again.

        In this order, a worker that reads the record before its removal starts afresh, and one
        that reads after finds no checkpoint to resume: both start at step 0.
        """
        self.remove_checkpoints(trial)
        os.remove(os.path.join(self.trial_dir(trial), TRIAL_RESULTS_FILENAME))

    def run_trial(self, trial: int, train_arrays, num_steps: int) -> dict:
        finished, afresh = self.earlier_trial(trial, train_arrays)
        if finished is not None:
            return finished
        if self.chief:
            if afresh:
                self.discard_trial(trial)
            return self._run_trial(trial, self.trial_dir(trial), train_arrays, num_steps)
        with checkpointing.scratch_directory(f"convbert-finetuning-worker-trial{trial}-") as scratch:
            return self._run_trial(trial, scratch, train_arrays, num_steps, afresh)

    def _run_trial(self, trial: int, trial_dir: str, train_arrays, num_steps: int, afresh: bool = False) -> dict:
        """Runs one trial, writing into trial_dir (a throwaway directory on non-chief workers);
        a non-chief worker resumes from the chief's latest checkpoint unless `afresh`."""
        hp = self.hp
        leftovers = remove_interrupted_writes(trial_dir, TRIAL_INTERRUPTED_WRITE_PATTERNS)
        if leftovers:
            self.log(f"trial {trial}: removed {len(leftovers)} partial write(s) of an interrupted run: "
                     + ", ".join(os.path.relpath(p, trial_dir) for p in leftovers))
        if hp.do_train:
            os.makedirs(trial_dir, exist_ok=True)
            self.config.to_json_file(os.path.join(trial_dir, CONFIG_FILENAME))
        keras.utils.set_random_seed(hp.seed + trial - 1)
        model, optimizer, loss_scale = self.build(num_steps)
        trainer = Trainer(model, optimizer, self.strategy, hp.train_batch_size, self.jit_compile, loss_scale,
                          hp.loss_reduction)
        checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer, loss_scale=loss_scale,
                                         rng_states=random_state_variables(model))
        manager = checkpointing.checkpoint_manager(checkpoint, trial_dir, 1, optimizer.iterations)
        latest = None if afresh and not self.chief else checkpointing.checkpoint_to_resume(
            manager, self.chief, self.trial_dir(trial))
        start = 0
        if latest:
            start = checkpointing.resume(checkpoint, latest, optimizer.iterations)
            self.log(f"trial {trial}: resuming from {latest} at step {start}")
        if hp.do_train and start < num_steps:
            self.train_trial(trial, trial_dir, trainer, manager, train_arrays, num_steps, start)
        results = self.write_trial_outputs(trial, trial_dir, trainer)
        if hp.do_train and self.chief:
            atomic_write_json(os.path.join(trial_dir, TRIAL_RESULTS_FILENAME),
                              {"hparams": self.trial_hparams(), "data": self.data_digest(train_arrays),
                               "results": results})
        return results

    def train_trial(self, trial, trial_dir, trainer: Trainer, manager, train_arrays, num_steps: int, start: int):
        """Trains a trial from `start`, saving at every save_checkpoints_steps and at the end."""
        hp = self.hp
        self.log(f"trial {trial}: fine-tuning {hp.task_label} for {num_steps} steps "
                 f"(batch {hp.train_batch_size}, lr {hp.learning_rate})")
        writer = tf.summary.create_file_writer(os.path.join(trial_dir, "train"))

        def on_loop_end(step, loss):
            if step % hp.save_checkpoints_steps == 0 or step >= num_steps:
                manager.save(checkpoint_number=step)
            with writer.as_default(step=step):
                tf.summary.scalar("loss", loss)
                tf.summary.scalar("learning_rate", float(trainer.optimizer.learning_rate))
            writer.flush()

        trainer.train(train_arrays, num_steps, start, min(hp.iterations_per_loop, num_steps), hp.seed + trial,
                      on_loop_end=on_loop_end, out=self.out, manager=manager)

    def write_trial_outputs(self, trial, trial_dir, trainer: Trainer) -> dict:
        """Dev scores and predictions, test outputs and exports of a trial; returns the dev results."""
        hp = self.hp
        results = {}
        if hp.do_eval:
            for task in self.tasks:
                results.update(self.evaluate(task, trainer, trial_dir))
        if hp.write_test_outputs and trial <= hp.n_writes_test:
            for task in self.tasks:
                self.write_test_outputs(task, trainer, trial_dir)
        if hp.export:
            for task in self.tasks:
                path = export_task(trainer.model, task, os.path.join(trial_dir, "saved_model", task.name),
                                   vocab_file=hp.vocab_file, do_lower_case=hp.do_lower_case,
                                   strip_accents=hp.strip_accents,
                                   max_seq_length=hp.max_seq_length, max_query_length=hp.max_query_length,
                                   max_answer_length=hp.max_answer_length, qa_na_threshold=hp.qa_na_threshold,
                                   doc_stride=hp.doc_stride, n_best_size=hp.n_best_size,
                                   window_batch_size=hp.predict_batch_size, overwrite=True)
                self.log(f"exported {path}")
        return results

    def predict(self, task, trainer, split):
        examples, features = self.read(task, split)
        task_id = self.tasks.index(task)
        arrays = stack_model_inputs(features, task_id)
        raw = trainer.predict(arrays, self.hp.eval_batch_size)[task.name]
        return examples, task.postprocess(examples, features, raw, **task.postprocess_options(self.hp))

    def evaluate(self, task, trainer, trial_dir) -> dict:
        results = {}
        for split in [s for s in task.splits() if s.startswith("dev")]:
            examples, predictions = self.predict(task, trainer, split)
            metrics = task.score(examples, predictions)
            name = task.name if split == "dev" else f"{task.name}_{split[len('dev_'):]}"
            results[name] = metrics
            self.log(f"{name} dev: " + ", ".join(f"{k} {v:.2f}" for k, v in metrics.items()))
            task.write_predictions(os.path.join(trial_dir, "dev_predictions"), split, examples, predictions)
        return results

    def write_test_outputs(self, task, trainer, trial_dir):
        test_dir = os.path.join(trial_dir, "test_predictions")
        for split in task.test_splits():
            try:
                examples, predictions = self.predict(task, trainer, split)
            except DataError as e:
                self.log(f"{task.name} {split}: no test outputs ({e})")
                continue
            path = task.write_test_predictions(test_dir, split, examples, predictions)
            self.log(f"wrote {path}")

    def remove_checkpoints(self, trial):
        """keep_all_models=False: a finished trial keeps its predictions and exports, not its weights."""
        trial_dir = self.trial_dir(trial)
        for name in os.listdir(trial_dir):
            if name.startswith("ckpt-") or name == "checkpoint":
                os.remove(os.path.join(trial_dir, name))

    def run(self) -> dict:
        hp = self.hp
        train_arrays, num_steps = None, 0
        if hp.do_train:
            train_arrays = self.training_arrays()
            # The last partial batch of an epoch is trained too (padded with zero-loss rows).
            num_steps = train_steps(len(train_arrays["input_ids"]), hp.train_batch_size, hp.num_train_epochs)
            if hp.debug:
                num_steps = min(num_steps, 20)
        trials = []
        for trial in range(1, hp.num_trials + 1):
            trials.append(self.run_trial(trial, train_arrays, num_steps))
            if not hp.keep_all_models and trial < hp.num_trials and self.chief:
                self.remove_checkpoints(trial)
            if trials[-1] and self.chief:
                paths = outputs_lib.write_results(self.results_dir, trials, name=f"{hp.task_label}_results")
                self.log(f"results: {paths['txt']}")
        summary = outputs_lib.summarize_trials(trials)
        if summary:
            self.log(outputs_lib.format_results_table(summary))
        return summary


def run_finetuning(hp: FinetuningHParams, strategy, jit_compile=False, out=sys.stdout) -> dict:
    """Fine-tunes hp.task_names for hp.num_trials trials; returns {task: {trials, median}}.

    Before reading any data: model_dir/finetuning_models must be writable with room for two
    checkpoints, and no other run may be fine-tuning the same tasks there (a lock file per task
    set); a trial directory holding another configuration's checkpoint is refused.
    """
    run = FinetuningRun(hp, strategy, jit_compile, out)
    run.check_run_dir()
    lock = model_dir_lock(run.run_dir, f".{hp.task_label}.run.lock") if run.chief else contextlib.nullcontext()
    with lock:
        return run.run()
