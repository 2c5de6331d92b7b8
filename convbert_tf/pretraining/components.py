"""`Pretraining`: the models, optimizer, loss scale, checkpoint and compiled train steps of one
pretraining run, and its masked, distributed input batches. `run.py` drives it.

Keras 3's `fit` breaks under MultiWorkerMirroredStrategy (keras-team/keras#20585), so the loop
is written out (`training/loop.py`): `tf.function` + `strategy.run` + `GradientTape`, several
steps per call.
"""

from __future__ import annotations

import sys

import keras
import tensorflow as tf

from convbert_tf import metrics as metrics_lib
from convbert_tf.checkpoints import (CheckpointError, load_original_pretraining_checkpoint, random_state_variables,
                                     resolve_checkpoint_prefix)
from convbert_tf.config import ConfigError
from convbert_tf.data import tokenization
from convbert_tf.training.distribute import is_chief, is_multi_worker
from convbert_tf.pretraining import input_pipeline
from convbert_tf.pretraining.hparams import PretrainingHParams
from convbert_tf.pretraining.masking import mask_tokens
from convbert_tf.models.electra import build_pretrainer
from convbert_tf.models.electra_losses import step_metric_sums
from convbert_tf.training import checkpointing
from convbert_tf.training import loop as loop_lib
from convbert_tf.training.learning_rates import WarmupPolynomialDecay
from convbert_tf.training.loss_scale import loss_scale_for_global_policy
from convbert_tf.training.optimizer import build_optimizer

SPECIAL_TOKENS = tokenization.SPECIAL_TOKENS


def read_special_ids(vocab_file: str, vocab_size: int) -> dict:
    """Ids of the special tokens in a vocab file; checks its size against the model's."""
    def read(path):
        tokens = tokenization.read_vocab(path)  # checks the special tokens
        return tokens, len(tokens)

    tokens = checkpointing.checked_vocab(vocab_file, vocab_size, read, "build one with build_pretraining_dataset.py "
                                         "or set vocab_file in --hparams")
    return {t: tokens.index(t) for t in SPECIAL_TOKENS}


class Pretraining:
    """Builds the models, optimizer, checkpoints and compiled steps of one pretraining run."""

    def __init__(self, hp: PretrainingHParams, strategy: tf.distribute.Strategy, jit_compile: bool = False,
                 out=sys.stdout):
        self.hp = hp
        self.strategy = strategy
        self.jit_compile = jit_compile
        self.out = out
        self.config = hp.model_config()
        self.special_ids = read_special_ids(hp.vocab_file, self.config.vocab_size)
        self.chief = is_chief(strategy)
        self.num_replicas = strategy.num_replicas_in_sync
        if hp.train_batch_size % self.num_replicas:
            raise ConfigError(f"train_batch_size {hp.train_batch_size} is not divisible by the "
                              f"{self.num_replicas} replicas")
        keras.utils.set_random_seed(hp.seed)
        with strategy.scope():
            self.model = build_pretrainer(
                self.config, generator_hidden_size=hp.generator_hidden_size,
                generator_layers=hp.generator_layers, electra_objective=hp.electra_objective,
                gen_weight=hp.gen_weight, disc_weight=hp.disc_weight, temperature=hp.temperature,
                uniform_generator=hp.uniform_generator, disallow_correct=hp.disallow_correct)
            self.schedule = WarmupPolynomialDecay(hp.learning_rate, hp.num_train_steps,
                                                  warmup_steps=hp.num_warmup_steps, power=hp.lr_decay_power)
            self.variables = self.model.trainable_variables
            self.optimizer = build_optimizer(self.schedule, self.variables, hp.weight_decay_rate)
            self.loss_scale = loss_scale_for_global_policy()
            self.metric_sums = {}
        self.rng_states = random_state_variables(self.model)  # dropout's, for an exact resume
        self.files_read = []  # the files this process's input pipelines read, in order (distributed_dataset)
        self.checkpoint = tf.train.Checkpoint(rng_states=self.rng_states, optimizer=self.optimizer,
                                              loss_scale=self.loss_scale, **self.model.networks())

    # ----- checkpoints -------------------------------------------------------------------------
    def checkpoint_manager(self) -> tf.train.CheckpointManager:
        """The model_dir's manager on the chief; a throwaway directory on other workers (removed at exit)."""
        return checkpointing.checkpoint_manager(self.checkpoint, checkpointing.run_directory(self.chief, self.hp.model_dir),
                                                self.hp.keep_checkpoint_max, self.optimizer.iterations)

    def restore_or_initialize(self, manager) -> int:
        """Resumes from the latest checkpoint in model_dir, else applies init_checkpoint.

        Every worker of a multi-worker run reads the chief's model_dir (the other workers save
        to throwaway directories), so all of them resume from the same step.
        """
        latest = checkpointing.checkpoint_to_resume(manager, self.chief, self.hp.model_dir)
        step = 0
        if latest:
            step = checkpointing.resume(self.checkpoint, latest, self.optimizer.iterations)
            self.log(f"resuming from {latest} at step {step}")
        elif self.hp.init_checkpoint:
            self.initialize_from(self.hp.init_checkpoint)
        if is_multi_worker(self.strategy):
            checkpointing.check_workers_agree(self.strategy, step, self.hp.model_dir)
        return step

    def initialize_from(self, path: str) -> None:
        """Copies weights from an original-release pretraining checkpoint or one of ours."""
        prefix = resolve_checkpoint_prefix(path)
        if checkpointing.is_original_checkpoint(prefix):
            self._initialize_from_original(prefix)
        else:
            self._initialize_from_ours(prefix)
        self.log(f"initialized from {prefix}")

    def _initialize_from_original(self, prefix: str) -> None:
        source = load_original_pretraining_checkpoint(prefix, self.config)
        pairs = [(self.model.discriminator, source.discriminator)]
        if self.hp.uniform_generator and source.generator is not None:
            self.log(f"init_checkpoint {prefix}: its generator is not used (uniform_generator)")
        if self.hp.electra_objective:
            for target, loaded, what in ((self.model.generator, source.generator, "generator"),
                                         (self.model.generator_head, source.generator_head, "generator_predictions"),
                                         (self.model.discriminator_head, source.discriminator_head,
                                          "discriminator_predictions")):
                if target is None:
                    continue
                if loaded is None:
                    self.log(f"init_checkpoint {prefix} has no {what}; it starts from random weights")
                else:
                    pairs.append((target, loaded))
        for target, loaded in pairs:
            if [w.shape for w in target.weights] != [w.shape for w in loaded.weights]:
                raise CheckpointError(f"init_checkpoint {prefix}: its generator does not match "
                                      "generator_hidden_size / generator_layers")
            for t, s in zip(target.weights, loaded.weights):
                t.assign(s)

    def _initialize_from_ours(self, prefix: str) -> None:
        """One of this project's checkpoints: the networks it holds, not the optimizer state."""
        names = dict(tf.train.list_variables(prefix))
        networks = self.model.networks()  # BERT mode names the encoder twice; it is saved once
        held = {id(net) for key, net in networks.items() if any(n.startswith(f"{key}/") for n in names)}
        for key in [key for key, net in networks.items() if id(net) not in held]:
            self.log(f"init_checkpoint {prefix} has no {key} (a uniform_generator run?); it starts "
                     "from random weights")
        checkpoint = tf.train.Checkpoint(**{key: net for key, net in networks.items() if id(net) in held})
        checkpoint.read(prefix).expect_partial().assert_existing_objects_matched()

    # ----- the step ----------------------------------------------------------------------------
    def _train_step(self, features, mlm_weight_sum, disc_weight_sum):
        """One replica's step; the normalizers are the global batch's (see total_loss)."""
        def forward():
            outputs = self.model(features, training=True)
            return self.model.total_loss(outputs, mlm_weight_sum, disc_weight_sum), outputs

        def summarize(loss, outputs):
            sums = step_metric_sums(outputs, features["input_mask"])
            sums["total_loss"] = (loss, tf.constant(1.0))
            if "disc_logits" in outputs:
                auc = metrics_lib.batch_auc(outputs["disc_labels"], outputs["disc_logits"], features["input_mask"])
                sums["disc_auc_exact"] = (auc, tf.constant(1.0))
            return sums

        return loop_lib.replica_step(forward, summarize, self.variables, self.loss_scale, self.optimizer)

    def make_train_loop(self):
        """A function running `steps` train steps; returns the mean metrics of those steps.

        A multi-worker run reads each batch in Python and calls a tf.function per step (see
        `loop.make_train_loop`); other runs read the batches inside one tf.function.
        """
        step_fn = loop_lib.compile_step(self._train_step, self.jit_compile)
        strategy = self.strategy

        def global_sum(per_replica):
            return strategy.reduce("sum", per_replica, axis=None)

        def one_step(features):
            mlm_weight_sum = global_sum(strategy.run(lambda f: tf.reduce_sum(f["masked_lm_weights"]),
                                                     args=(features,)))
            disc_weight_sum = global_sum(strategy.run(
                lambda f: tf.reduce_sum(tf.cast(f["input_mask"], tf.float32)), args=(features,)))
            sums = strategy.run(step_fn, args=(features, mlm_weight_sum, disc_weight_sum))
            values = {k: global_sum(num) / (global_sum(den) + 1e-6) for k, (num, den) in sums.items()}
            if "disc_auc_exact" in values:  # a mean over replicas, not a sum
                values["disc_auc_exact"] = global_sum(sums["disc_auc_exact"][0]) / strategy.num_replicas_in_sync
            values["total_loss"] = global_sum(sums["total_loss"][0])
            return values

        def mean(totals, steps):
            return {k: v / tf.cast(steps, tf.float32) for k, v in totals.items()}

        return loop_lib.make_train_loop(one_step, mean, python_steps=is_multi_worker(strategy))

    # ----- data --------------------------------------------------------------------------------
    def distributed_dataset(self, files, batch_size, is_training, skip_steps=0, bad_records=None):
        """Per-replica batches, masked in the input pipeline with per-example seeds.

        `bad_records` (an `records.BadRecordTracker`; None: a new "fail" one) is the run's
        bad-record handling: each input pipeline's start-up check goes through it, and the bad
        records it holds are left out. Adds the files this process's input pipelines read to
        `files_read`.

        Every example's masking and sampling seeds derive from (seed, input pipeline, its
        index in the pipeline's stream), so the randomness of a step does not depend on how
        the global batch is split over replicas, and a resumed run (which skips the batches
        already consumed) continues the uninterrupted run's stream exactly.
        """
        per_replica = batch_size // self.num_replicas
        special = self.special_ids
        hp = self.hp

        def mask_example(input_ids, input_mask, seed):
            masked = mask_tokens(input_ids[None], input_mask[None], mask_id=special["[MASK]"],
                                 special_ids=(special["[CLS]"], special["[SEP]"], special["[MASK]"]),
                                 seed=seed, mask_prob=hp.mask_prob,
                                 max_predictions_per_seq=hp.predictions_per_seq,
                                 sample_with_replacement=hp.sample_with_replacement)
            return {k: v[0] for k, v in masked.items()}

        def dataset_fn(context):
            self.files_read.extend(f for f in input_pipeline.pipeline_files(files, context) if f not in self.files_read)
            dataset = input_pipeline.pretraining_dataset(
                files, per_replica, hp.max_seq_length, is_training=is_training, input_context=context,
                seed=hp.seed, bad_records=bad_records)
            replicas_per_pipeline = context.num_replicas_in_sync // context.num_input_pipelines
            skip_batches = skip_steps * replicas_per_pipeline
            if skip_batches:
                dataset = dataset.skip(skip_batches)
            stream = hp.seed * 1_000_003 + context.input_pipeline_id  # one random stream per pipeline

            def add_masking(batch_index, features):
                rows = batch_index * per_replica + tf.range(per_replica, dtype=tf.int64)  # [B]
                streams = tf.fill([per_replica], tf.constant(stream, tf.int64))  # [B]
                mask_seeds = tf.stack([streams, 2 * rows], axis=1)  # [B, 2]
                sampling_seeds = tf.stack([streams, 2 * rows + 1], axis=1)  # [B, 2]
                masked = tf.map_fn(
                    lambda args: mask_example(*args),
                    (features["input_ids"], features["input_mask"], mask_seeds),
                    fn_output_signature={"masked_input_ids": tf.int32, "masked_lm_positions": tf.int32,
                                         "masked_lm_ids": tf.int32, "masked_lm_weights": tf.float32})
                return dict(features, **masked, sampling_seeds=sampling_seeds)

            return dataset.enumerate(start=skip_batches).map(add_masking, num_parallel_calls=tf.data.AUTOTUNE)

        return self.strategy.distribute_datasets_from_function(dataset_fn)

    def log(self, message: str) -> None:
        if self.chief:
            print(message, file=self.out, flush=True)
