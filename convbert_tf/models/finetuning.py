"""FinetuningModel: one shared ConvBERT encoder with a head per task, and the per-task losses.

Legend: B batch, T length, D hidden.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from convbert_tf.encoder import ConvBertEncoder
from convbert_tf.finetuning.tasks.base import HeadOptions

# Every batch carries all of these, whatever its tasks, so that tasks can share one batch.
LABEL_FEATURES = {
    "task_id": tf.int32, "label_ids": tf.int32, "label_value": tf.float32, "start_positions": tf.int32,
    "end_positions": tf.int32, "is_impossible": tf.float32, "tag_ids": tf.int32, "tag_weights": tf.float32,
}


class FinetuningModel(keras.Model):
    """encoder -> {task: head}. Each example's loss comes from the head of its `task_id`.

    Each task (a `finetuning.tasks` Task) builds, runs and scores its own head: classification
    and regression on the [CLS] state, the QA span head with joint start/end prediction and the
    answerable classifier, a per-token tagging head. Several tasks share the encoder (the
    original's multi-task mode); a batch may mix tasks; task_id is the task's position in `tasks`.

    Args:
      encoder: the ConvBertEncoder.
      tasks: the Task objects, in task_id order; each head is named after its task.
      beam_size, joint_prediction, answerable_classifier, answerable_uses_start_logits,
        answerable_weight: the QA head's hparams (`tasks.base.HeadOptions`).
    """

    def __init__(self, encoder: ConvBertEncoder, tasks: list, beam_size=20, joint_prediction=True,
                 answerable_classifier=True, answerable_uses_start_logits=True, answerable_weight=0.5,
                 **kwargs):
        super().__init__(name="finetuning", **kwargs)
        self.encoder = encoder
        self.tasks = list(tasks)
        self.head_options = HeadOptions(beam_size, joint_prediction, answerable_classifier,
                                        answerable_uses_start_logits, answerable_weight)
        width = encoder.config.hidden_size
        for task in self.tasks:
            head = task.build_head(width, encoder.dtype_policy, self.head_options)
            # One attribute per head (a dict of layers is invisible to tf.train.Checkpoint).
            setattr(self, f"head_{task.name}", head)
        self.built = True

    def head(self, name):
        return getattr(self, f"head_{name}")

    def call(self, features, training=None):
        encoded = self.encoder({k: features[k] for k in ("input_ids", "input_mask", "segment_ids")},
                               training=training)
        sequence_output = encoded["sequence_output"]  # [B, T, D]
        return {task.name: task.head_outputs(self.head(task.name), sequence_output, features, training=training)
                for task in self.tasks}

    def per_example_losses(self, features, outputs):
        """[B] losses: each example's from the head of its task (0 for padding examples)."""
        total = tf.zeros_like(tf.cast(features["task_id"], tf.float32))  # [B]
        for task_id, task in enumerate(self.tasks):
            loss = task.per_example_loss(features, outputs[task.name], self.head_options)
            total += tf.where(tf.equal(features["task_id"], task_id), loss, 0.0)
        return total
