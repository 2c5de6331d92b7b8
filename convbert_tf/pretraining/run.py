"""The pretraining run: `train` (resume, the loops of steps, checkpoints, progress, export) and
`evaluate` (the original's eval metrics on held-out records), on `components.Pretraining`."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import sys
import time

import numpy as np
import tensorflow as tf

from convbert_tf import io
from convbert_tf import metrics as metrics_lib
from convbert_tf.checkpoints import CONFIG_FILENAME, CheckpointError, save_original_checkpoint
from convbert_tf.config import ConfigError, ConvBertConfig
from convbert_tf.training.distribute import is_chief, worker_lost_error
from convbert_tf.export import export_encoder
from convbert_tf.pretraining import input_pipeline, records
from convbert_tf.pretraining.components import Pretraining
from convbert_tf.pretraining.hparams import PretrainingHParams
from convbert_tf.run_guard import (PreemptionWatcher, check_model_dir_writable, check_saved_config, checkpoint_bytes,
                                   model_dir_lock, remove_interrupted_writes)
from convbert_tf.training import loop as loop_lib
from convbert_tf.training.progress import report

HPARAMS_FILENAME = "hparams.json"


def split_files(hp: PretrainingHParams) -> tuple[list, list]:
    """(train files, held-out eval files). With several files and no eval_tfrecords, the last
    file is held out from training so that do_eval never scores training records."""
    if not hp.pretrain_tfrecords:
        raise ConfigError("no pretraining records: pass --data_dir or set pretrain_tfrecords in --hparams")
    try:
        files = input_pipeline.expand_file_patterns(hp.pretrain_tfrecords)
    except ValueError as e:
        raise ConfigError(f"{e}; build them with build_pretraining_dataset.py") from None
    if hp.eval_tfrecords:
        eval_files = input_pipeline.expand_file_patterns(hp.eval_tfrecords)
        return [f for f in files if f not in set(eval_files)], eval_files
    if len(files) >= 2:
        return files[:-1], files[-1:]
    return files, []


def check_model_dir(hp: PretrainingHParams, config: ConvBertConfig) -> None:
    """Refuses a model_dir that cannot be written, lacks room for checkpoints, or holds another
    configuration's run."""
    with_generator = hp.electra_objective and not hp.uniform_generator
    networks = [config, hp.generator_config()] if with_generator else [config]
    check_model_dir_writable(hp.model_dir, 2 * checkpoint_bytes(networks))
    check_saved_config(hp.model_dir, config, "use another --model_name or remove that directory")


def bad_record_tracker(hp: PretrainingHParams, strategy: tf.distribute.Strategy,
                       out=sys.stdout) -> records.BadRecordTracker:
    """The run's bad-record handling (hp.bad_records). Every worker reports the bad records it
    skips, since each reads its own files; the lines of a worker other than the chief name it."""
    prefix = "" if is_chief(strategy) else f"worker {strategy.cluster_resolver.task_id}: "
    return records.BadRecordTracker(hp.bad_records, report=lambda line: print(prefix + line, file=out,
                                                                                     flush=True))


def check_records(files, max_seq_length: int, bad_records: records.BadRecordTracker, where: str) -> None:
    """The start-up check over all `files`, before the model is built (each input pipeline checks
    its own files again when it is created): a bad first record goes through `bad_records`, and
    records of another max_seq_length are a ConfigError."""
    try:
        records.check_first_records(files, max_seq_length, bad_records, where=where)
    except records.BadRecordError:
        raise
    except ValueError as e:
        raise ConfigError(str(e)) from None


def train(hp: PretrainingHParams, strategy: tf.distribute.Strategy, jit_compile: bool = False,
          out=sys.stdout, stop_at_step: int | None = None) -> dict:
    """Pretrains to hp.num_train_steps, resuming from model_dir; returns the last logged metrics.

    `stop_at_step` ends this invocation early (after a checkpoint at that step) without
    changing the schedule, as an interrupted run would; a later call resumes. SIGTERM does the
    same at the end of the current loop; the result then has `preempted: True`.
    A second run on the same model_dir is refused while this one holds its lock. What a killed
    run left (temporary files of interrupted writes) is removed first, and a finished run whose
    export did not complete exports again. A worker lost by a multi-worker run raises
    WorkerLostError on the others (restart all to resume).
    """
    config = hp.model_config()
    check_model_dir(hp, config)
    lock = model_dir_lock(hp.model_dir) if is_chief(strategy) else contextlib.nullcontext()
    with lock, PreemptionWatcher() as preemption:
        if is_chief(strategy):
            leftovers = remove_interrupted_writes(hp.model_dir)
            if leftovers:
                print(f"removed {len(leftovers)} partial write(s) of an interrupted run: "
                      + ", ".join(os.path.relpath(p, hp.model_dir) for p in leftovers), file=out, flush=True)
        try:
            return _train(hp, strategy, jit_compile, out, stop_at_step, config, preemption)
        except tf.errors.OpError as e:
            latest = tf.train.latest_checkpoint(hp.model_dir)
            lost = worker_lost_error(e, strategy, f"the last checkpoint is {latest}" if latest
                                     else f"there is no checkpoint in {hp.model_dir} yet")
            if lost is None:
                raise
            raise lost from None


def _train(hp, strategy, jit_compile, out, stop_at_step, config, preemption) -> dict:
    train_files, _ = split_files(hp)
    bad_records = bad_record_tracker(hp, strategy, out)
    check_records(train_files, hp.max_seq_length, bad_records, "The start-up check found it before training")
    run = Pretraining(hp, strategy, jit_compile, out)
    manager = run.checkpoint_manager()
    start = run.restore_or_initialize(manager)
    if run.chief:
        config.to_json_file(os.path.join(hp.model_dir, CONFIG_FILENAME))
        io.atomic_write_text(os.path.join(hp.model_dir, HPARAMS_FILENAME), hp.to_json_string())
    if start >= hp.num_train_steps:
        run.log(f"already trained to step {start} of {hp.num_train_steps}; nothing to train")
        if hp.export_at_end and run.chief and not export_complete(hp.model_dir, start):
            export_run(run, start)  # the run ended before its export (killed, disk full): finish it
        return {}
    run.log(f"pretraining {config.hidden_size}-wide ConvBERT on {run.num_replicas} replica(s) "
            f"({type(strategy).__name__}), steps {start} -> {hp.num_train_steps}, "
            f"batch {hp.train_batch_size} x {hp.max_seq_length}")
    end = hp.num_train_steps if stop_at_step is None else min(stop_at_step, hp.num_train_steps)
    begun = time.perf_counter()
    last = _run_steps(run, manager, train_files, bad_records, start, end, preemption)
    if last.get("preempted"):
        return last
    step = last["step"]
    run.log(f"done: {step} steps in {time.perf_counter() - begun:.0f}s; checkpoint {manager.latest_checkpoint}"
            + (f"; {bad_records.summary()}" if bad_records.excluded else ""))
    if bad_records.excluded and not run.chief:
        bad_records.report(bad_records.summary())
    if hp.export_at_end and step >= hp.num_train_steps and run.chief:
        export_run(run, step)
    last["checkpoint"] = manager.latest_checkpoint
    last["bad_records"] = bad_records.count
    return last


def _run_steps(run: Pretraining, manager, train_files, bad_records, start: int, end: int, preemption) -> dict:
    """Trains from `start` to `end` in loops of iterations_per_loop steps (ending at every
    checkpoint step), saving, logging and stopping on SIGTERM; returns the last loop's metrics."""
    hp = run.hp
    iterator = iter(run.distributed_dataset(train_files, hp.train_batch_size, True, start, bad_records))
    train_loop = run.make_train_loop()
    writer = tf.summary.create_file_writer(os.path.join(hp.model_dir, "train")) if run.chief else None
    log_every = hp.log_every_steps or hp.iterations_per_loop
    step, last, last_logged, window = start, {}, start, loop_lib.Throughput()
    while step < end:
        steps = min(hp.iterations_per_loop, end - step,
                    hp.save_checkpoints_steps - step % hp.save_checkpoints_steps)
        skipped_before = loop_lib.skipped_steps(run.loss_scale)
        try:
            values = train_loop(iterator, tf.constant(steps))
        except (tf.errors.DataLossError, tf.errors.InvalidArgumentError) as error:
            step = int(run.optimizer.iterations.numpy())
            bad_records.locate(run.files_read, hp.max_seq_length, error, f"Training stopped at step {step}; the "
                               f"last checkpoint is {manager.latest_checkpoint or 'none yet'}")
            iterator = iter(run.distributed_dataset(train_files, hp.train_batch_size, True, step, bad_records))
            continue
        step = int(run.optimizer.iterations.numpy())
        window.add(steps)
        last = {k: float(v) for k, v in values.items()}
        loop_lib.check_loss(last["total_loss"], step, run.loss_scale, skipped_before, manager.latest_checkpoint)
        stopping = preemption.requested and step < end
        if step % hp.save_checkpoints_steps == 0 or step >= end or stopping:
            manager.save(checkpoint_number=step)
        if step - last_logged >= log_every or step >= end:
            _log_progress(run, writer, window, step, last, bad_records)
            last_logged = step
        if stopping:
            run.log(f"SIGTERM: stopped at step {step} with checkpoint {manager.latest_checkpoint}; "
                    "rerun the same command to resume")
            return dict(last, step=step, checkpoint=manager.latest_checkpoint, preempted=True)
    return dict(last, step=step)


def _log_progress(run: Pretraining, writer, window: loop_lib.Throughput, step: int, last: dict,
                  bad_records: records.BadRecordTracker) -> None:
    """The progress event (chief only) and the TensorBoard scalars of the loops since the last one."""
    hp = run.hp
    losses = {"gen": last["mlm_loss"]}
    if "disc_loss" in last:
        losses["disc"] = last["disc_loss"]
    counters = loop_lib.counters(run.loss_scale, bad_records=bad_records.count if bad_records.excluded else 0)
    event = window.event(step, hp.num_train_steps, losses, hp.train_batch_size * hp.max_seq_length, "tok/s",
                         counters=counters)
    if run.chief:
        report(run.out, event)
    if writer is not None:
        with writer.as_default(step=step):
            for key, value in last.items():
                tf.summary.scalar(key, value)
            tf.summary.scalar("learning_rate", float(run.schedule(step)))
            tf.summary.scalar("tokens_per_sec", event.rate)
        writer.flush()


def export_complete(model_dir: str, step: int) -> bool:
    """Whether export_run finished for `step`: its last write, the original-layout checkpoint's
    state file naming model.ckpt-<step>, is there (each write is renamed into place whole)."""
    original = tf.train.latest_checkpoint(os.path.join(model_dir, "original_layout"))
    return (os.path.exists(os.path.join(model_dir, "saved_model", "saved_model.pb"))
            and original is not None and os.path.basename(original) == f"model.ckpt-{step}")


def export_run(run: Pretraining, step: int) -> tuple[str, str]:
    """The servable SavedModel, then the original-layout checkpoint, of a finished run."""
    hp = run.hp
    saved_model = export_encoder(run.model.discriminator, os.path.join(hp.model_dir, "saved_model"),
                                 vocab_file=hp.vocab_file, do_lower_case=hp.do_lower_case,
                                 strip_accents=hp.strip_accents, max_seq_length=hp.max_seq_length, overwrite=True)
    original = save_original_checkpoint(
        run.model.discriminator, os.path.join(hp.model_dir, "original_layout", f"model.ckpt-{step}"),
        global_step=step, generator=run.model.generator if hp.electra_objective else None,
        generator_head=run.model.generator_head if hp.electra_objective else None,
        discriminator_head=run.model.discriminator_head, overwrite=True)
    run.log(f"exported {saved_model} (signatures serving_default, serve_text) and {original}")
    return saved_model, original


def make_eval_step(run: Pretraining):
    """A tf.function: a batch -> {key: per-replica arrays} for `metrics.pretraining_eval_metrics`,
    and `loss`, the batch's total loss (the eval loss an Estimator reports)."""
    hp, strategy = run.hp, run.strategy
    keys = ["masked_lm_ids", "masked_lm_weights", "mlm_losses", "mlm_loss_sum", "mlm_weight_sum"]
    if hp.electra_objective:
        keys += ["sampled_ids", "disc_loss_sum", "disc_weight_sum"]
    with_disc_metrics = hp.electra_objective and hp.disc_weight > 0  # as the original reports them
    if with_disc_metrics:
        keys += ["disc_labels", "disc_logits", "disc_example_losses"]

    def replica_fn(features):
        outputs = run.model(features, training=False)
        result = {k: outputs[k] for k in keys}
        result["masked_lm_preds"] = tf.argmax(outputs["mlm_logits"], -1, output_type=tf.int32)  # [B, P]
        if with_disc_metrics:
            result["disc_logits"] = tf.cast(outputs["disc_logits"], tf.float32)  # [B, T]
            result["disc_probs"] = tf.sigmoid(result["disc_logits"])  # [B, T]
            result["input_mask"] = features["input_mask"]
        return result

    @tf.function
    def eval_step(features):
        per_replica = strategy.run(replica_fn, args=(features,))
        sums = {k: strategy.reduce("sum", per_replica.pop(k), axis=None) for k in list(per_replica)
                if k.endswith("_sum")}
        return dict(per_replica, loss=run.model.total_loss(sums))

    return eval_step


def evaluate(hp: PretrainingHParams, strategy: tf.distribute.Strategy, out=sys.stdout) -> dict:
    """The original's eval metrics under its names (`metrics.pretraining_eval_metrics`: its formulas, plus
    disc_auc_exact) and the Estimator's `loss`, for the latest checkpoint, on held-out records only."""
    _, eval_files = split_files(hp)
    if not eval_files:
        raise ConfigError("do_eval needs held-out records: set eval_tfrecords in --hparams, or build at least "
                          "two TFRecord files (the last one is then held out from training)")
    bad_records = bad_record_tracker(hp, strategy, out)
    check_records(eval_files, hp.max_seq_length, bad_records, "The start-up check found it before evaluation")
    run = Pretraining(hp, strategy, out=out)
    prefix = tf.train.latest_checkpoint(hp.model_dir)
    if prefix is None:
        raise CheckpointError(f"model_dir {hp.model_dir} has no checkpoint to evaluate")
    run.checkpoint.read(prefix).expect_partial()
    step = int(run.optimizer.iterations.numpy())

    eval_step = make_eval_step(run)
    collected: dict = {}
    batches = 0
    reader = records.read_batches(
        lambda skip: iter(run.distributed_dataset(eval_files, hp.eval_batch_size, False, skip, bad_records)),
        run.files_read, hp.max_seq_length, bad_records, "Evaluation")
    for features in itertools.islice(reader, hp.num_eval_steps):
        for key, value in eval_step(features).items():
            for local in strategy.experimental_local_results(value):
                collected.setdefault(key, []).append(np.asarray(local))
        batches += 1
    if bad_records.excluded:
        bad_records.report(f"eval: {bad_records.summary()}")
    if not batches:
        raise ConfigError(f"no complete eval batch of {hp.eval_batch_size} in {eval_files}")
    cat = {k: np.concatenate([v.reshape(v.shape[0], -1) if v.ndim else v.reshape(1, 1) for v in vs])
           for k, vs in collected.items()}
    results = {"global_step": step, "eval_batches": batches, "loss": float(np.mean(cat.pop("loss")))}
    results.update(metrics_lib.pretraining_eval_metrics(cat))
    if run.chief and hp.results_txt:
        io.makedirs(os.path.dirname(hp.results_txt))
        text = "\n".join(f"{k}: {v}" for k, v in results.items()) + "\n"
        io.atomic_write_text(hp.results_txt, text)
        io.atomic_write_text(os.path.splitext(hp.results_txt)[0] + ".json", json.dumps(results, indent=2) + "\n")
    run.log("eval: " + ", ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in results.items()))
    return results

