"""Fine-tuning's train and predict over in-memory feature arrays, under any strategy: the
padding and tf.data around them, the fine-tuning loss on the shared step and loop of
`training/loop.py`, and the distributed predict that puts rows back in order.

Legend: B a replica's batch.
"""

from __future__ import annotations

import math
import sys

import numpy as np
import tensorflow as tf

from convbert_tf.finetuning.hparams import LOSS_REDUCTIONS
from convbert_tf.models.finetuning import LABEL_FEATURES, FinetuningModel
from convbert_tf.training import loop as loop_lib
from convbert_tf.training.loss_scale import DynamicLossScale
from convbert_tf.training.optimizer import AdamWeightDecay
from convbert_tf.training.progress import report

# The feature that carries each row's index through a distributed predict.
ROW_INDEX = "row_index"


def pad_features(arrays: dict, multiple: int) -> tuple[dict, int]:
    """Pads every array with zero rows to a multiple of `multiple`; padding rows get task_id -1.

    Returns the padded arrays and the number of real rows. As the original's "padding examples",
    padding rows have zero loss (no head claims task_id -1) and so no gradient; predictions drop
    them by count.
    """
    count = len(arrays["input_ids"])
    extra = (-count) % multiple
    if not extra:
        return arrays, count
    padded = {k: np.concatenate([v, np.zeros((extra,) + v.shape[1:], v.dtype)]) for k, v in arrays.items()}
    padded["task_id"][count:] = -1
    return padded, count


def train_steps(num_examples: int, batch_size: int, epochs: float) -> int:
    """The original's step count: int(ceil(n / batch) · epochs).

    The original pads the n training examples with zero-loss padding examples to whole batches
    and trains int(n_padded // batch · epochs) steps; `Trainer.train` pads the same way, so the
    last partial batch of every epoch is trained, as there.
    """
    return int(math.ceil(num_examples / batch_size) * epochs)


def dataset_from_arrays(arrays: dict, batch_size: int, training: bool, seed: int) -> tf.data.Dataset:
    """tf.data over feature arrays: shuffled and repeated for training, in order otherwise."""
    dataset = tf.data.Dataset.from_tensor_slices(arrays)
    if training:
        dataset = dataset.shuffle(len(arrays["input_ids"]), seed=seed, reshuffle_each_iteration=True).repeat()
    return dataset.batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)


class Trainer:
    """Compiled train and predict steps for a FinetuningModel under a tf.distribute strategy.

    The loss a train step minimizes (`loss_reduction`):

    * "sum" (the original's): the sum of its examples' losses over the global batch. Each replica
      sums its own examples and `AdamWeightDecay.apply` sums the replicas' gradients before it
      clips their global norm to 1.0, so N replicas take exactly one device's step.
    * "mean": that sum divided by `global_batch_size` (padding rows count), so the gradients
      before clipping are 1/global_batch_size of "sum"'s.

    The progress lines, the TensorBoard "loss" and what `train` returns are, whatever the
    reduction, the mean loss per real example (padding rows left out) over the last loop.

    Args:
      model: the FinetuningModel, built under `strategy`.
      optimizer: its AdamWeightDecay, built on `model.trainable_variables`.
      strategy: the tf.distribute strategy.
      global_batch_size: the train batch over all replicas.
      jit_compile: compile each train step with XLA.
      loss_scale: dynamic loss scaling (float16); None for none.
      loss_reduction: "sum" or "mean", as above.
    """

    def __init__(self, model: FinetuningModel, optimizer: AdamWeightDecay, strategy: tf.distribute.Strategy,
                 global_batch_size: int, jit_compile: bool = False, loss_scale: DynamicLossScale | None = None,
                 loss_reduction: str = "sum"):
        if loss_reduction not in LOSS_REDUCTIONS:
            raise ValueError(f"loss_reduction {loss_reduction!r} is not one of {LOSS_REDUCTIONS}")
        self.loss_reduction = loss_reduction
        self.model = model
        self.loss_scale = loss_scale or DynamicLossScale(enabled=False)
        self.optimizer = optimizer
        self.strategy = strategy
        self.global_batch_size = global_batch_size
        self.jit_compile = jit_compile
        self.variables = model.trainable_variables

    def _forward(self, features):
        """forward() for `loop.scaled_gradients`: (the `loss_reduction` loss, the replica's loss sum)."""
        def forward():
            outputs = self.model(features, training=True)
            losses = self.model.per_example_losses(features, outputs)  # [B], 0 on padding rows
            loss_sum = tf.reduce_sum(losses)  # []
            loss = loss_sum if self.loss_reduction == "sum" else loss_sum / self.global_batch_size  # []
            return loss, loss_sum

        return forward

    @staticmethod
    def _real_rows(features):
        """The replica's rows that are not padding (task_id >= 0)."""
        return tf.reduce_sum(tf.cast(features["task_id"] >= 0, tf.float32))  # []

    def loss_and_gradients(self, features):
        """One replica's (gradients, loss sum, real rows) of a train batch.

        The gradients are those of the `loss_reduction` loss, before the replicas' sum and the
        clipping; the loss sum is over the replica's examples, and real rows counts those that
        are not padding (task_id >= 0).
        """
        grads, _, loss_sum = loop_lib.scaled_gradients(self._forward(features), self.variables, self.loss_scale)
        return grads, loss_sum, self._real_rows(features)

    def _train_step(self, features):
        """(loss sum, real rows) of one replica's step; the update sums the replicas' gradients, then clips."""
        return loop_lib.replica_step(self._forward(features), lambda loss, loss_sum: (loss_sum, self._real_rows(features)),
                                     self.variables, self.loss_scale, self.optimizer)

    def make_train_loop(self):
        """A function running `steps` train steps; returns their mean loss per real example."""
        step_fn = loop_lib.compile_step(self._train_step, self.jit_compile)
        strategy = self.strategy

        def one_step(features):
            step_sum, step_rows = strategy.run(step_fn, args=(features,))
            return {"loss_sum": strategy.reduce("sum", step_sum, axis=None),
                    "real_rows": strategy.reduce("sum", step_rows, axis=None)}

        def mean_per_example(totals, steps):
            return totals["loss_sum"] / tf.maximum(totals["real_rows"], 1.0)

        return loop_lib.make_train_loop(one_step, mean_per_example)

    def train(self, arrays: dict, num_steps: int, start_step: int, steps_per_loop: int, seed: int,
              on_loop_end=None, out=sys.stdout, log=True, manager: tf.train.CheckpointManager | None = None) -> float:
        """Runs train steps start_step..num_steps; returns the last loop's mean loss per example.

        The arrays are padded with zero-loss rows to a multiple of the global batch (as the
        original's padding examples), then shuffled and repeated. A loop whose loss is not
        finite stops the run (`loop.check_loss`), naming `manager`'s last checkpoint.
        """
        arrays, _ = pad_features(arrays, self.global_batch_size)
        dataset = dataset_from_arrays(arrays, self.global_batch_size, True, seed)
        if start_step:
            dataset = dataset.skip(start_step)
        iterator = iter(self.strategy.experimental_distribute_dataset(dataset))
        train_loop = self.make_train_loop()
        step, loss, window = start_step, float("nan"), loop_lib.Throughput()
        while step < num_steps:
            steps = min(steps_per_loop, num_steps - step)
            skipped_before = loop_lib.skipped_steps(self.loss_scale)
            loss = float(train_loop(iterator, tf.constant(steps)))
            step += steps
            window.add(steps)
            loop_lib.check_loss(loss, step, self.loss_scale, skipped_before,
                                manager.latest_checkpoint if manager is not None else None)
            if log:
                report(out, window.event(step, num_steps, {"loss": loss}, self.global_batch_size, "examples/s",
                                         loss_note="per example", counters=loop_lib.counters(self.loss_scale)))
            if on_loop_end is not None:
                on_loop_end(step, loss)
        return loss

    def predict(self, arrays: dict, batch_size: int) -> dict:
        """Runs the model in inference mode over all rows; returns {task: {output: array}} (real rows only).

        Every worker gets every row's outputs: each batch's outputs are gathered from all
        replicas (of all workers) with the rows' indices, and put back in row order.
        """
        padded, count = pad_features(arrays, batch_size * self.strategy.num_replicas_in_sync)
        total = len(padded["input_ids"])
        padded = dict(padded, **{ROW_INDEX: np.arange(total, dtype=np.int32)})  # int32: native on TPUs
        dataset = self.strategy.experimental_distribute_dataset(
            dataset_from_arrays(padded, batch_size, False, 0))

        def replica_step(features):
            features = dict(features)
            rows = features.pop(ROW_INDEX)
            return self.model(features, training=False), rows

        @tf.function
        def predict_step(features):
            outputs = self.strategy.run(replica_step, args=(features,))
            return tf.nest.map_structure(lambda value: self.strategy.gather(value, axis=0), outputs)

        collected: dict = {}
        row_parts = []
        for features in dataset:
            outputs, rows = predict_step(features)
            row_parts.append(rows.numpy())
            for task, values in outputs.items():
                for key, value in values.items():
                    collected.setdefault(task, {}).setdefault(key, []).append(value.numpy())
        rows = np.concatenate(row_parts) if row_parts else np.zeros([0], np.int32)
        seen, first = np.unique(rows, return_index=True)  # sorted row indices, where each came first
        if not np.array_equal(seen, np.arange(total)):
            raise RuntimeError(f"predict: the replicas returned {len(seen)} of {total} rows; the input "
                               "pipeline lost or invented rows")
        order = first[:count]
        return {task: {k: np.concatenate(v)[order] for k, v in values.items()} for task, values in collected.items()}


def empty_label_arrays(count: int, max_seq_length: int) -> dict:
    """Zero arrays for every label feature, for featurizers that fill only their own."""
    arrays = {}
    for key, dtype in LABEL_FEATURES.items():
        shape = (count, max_seq_length) if key in ("tag_ids", "tag_weights") else (count,)
        arrays[key] = np.zeros(shape, dtype.as_numpy_dtype)
    return arrays
