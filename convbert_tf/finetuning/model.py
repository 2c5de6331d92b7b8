"""FinetuningModel: one shared ConvBERT encoder with a head per task, and the per-task losses.

Legend: B batch, T length, D hidden, C classes, K beam size.
"""

from __future__ import annotations

import dataclasses

import keras
import tensorflow as tf

from convbert_tf.encoder import ConvBertEncoder
from convbert_tf.layers.classification_head import ClassificationHead
from convbert_tf.layers.question_answering_head import QuestionAnsweringHead
from convbert_tf.layers.tagging_head import TaggingHead

KINDS = ("classification", "regression", "qa", "tagging")
# Every batch carries all of these, whatever its tasks, so that tasks can share one batch.
LABEL_FEATURES = {
    "task_id": tf.int32, "label_ids": tf.int32, "label_value": tf.float32, "start_positions": tf.int32,
    "end_positions": tf.int32, "is_impossible": tf.float32, "tag_ids": tf.int32, "tag_weights": tf.float32,
}


@dataclasses.dataclass(frozen=True)
class HeadSpec:
    """What a task needs from the model: its name, kind and label count."""

    name: str
    kind: str
    num_labels: int = 1

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"task {self.name}: kind {self.kind!r} is not one of {KINDS}")


class FinetuningModel(keras.Model):
    """encoder -> {task: head}. Each example's loss comes from the head of its `task_id`.

    Heads (reference §5.2): classification/regression on the [CLS] state (dropout 0.1 and one
    dense layer), the QA span head with joint start/end prediction and the answerable
    classifier, and a per-token tagging head. Several tasks share the encoder (the original's
    multi-task mode); a batch may mix tasks.
    """

    def __init__(self, encoder: ConvBertEncoder, heads: list[HeadSpec], beam_size=20, joint_prediction=True,
                 answerable_classifier=True, answerable_uses_start_logits=True, answerable_weight=0.5,
                 **kwargs):
        super().__init__(name="finetuning", **kwargs)
        self.encoder = encoder
        self.specs = list(heads)
        self.answerable_weight = answerable_weight
        width = encoder.config.hidden_size
        for spec in self.specs:
            if spec.kind in ("classification", "regression"):
                head = ClassificationHead(spec.num_labels if spec.kind == "classification" else 1,
                                          dtype=encoder.dtype_policy, name=spec.name)
                head.build((None, width))
            elif spec.kind == "tagging":
                head = TaggingHead(spec.num_labels, dtype=encoder.dtype_policy, name=spec.name)
                head.build((None, None, width))
            else:
                head = QuestionAnsweringHead(beam_size, joint_prediction, answerable_classifier,
                                             answerable_uses_start_logits, dtype=encoder.dtype_policy,
                                             name=spec.name)
                head.build((None, None, width))
            # One attribute per head (a dict of layers is invisible to tf.train.Checkpoint).
            setattr(self, f"head_{spec.name}", head)
        self.built = True

    def head(self, name):
        return getattr(self, f"head_{name}")

    def call(self, features, training=None):
        encoded = self.encoder({k: features[k] for k in ("input_ids", "input_mask", "segment_ids")},
                               training=training)
        sequence_output = encoded["sequence_output"]  # [B, T, D]
        outputs = {}
        for spec in self.specs:
            head = self.head(spec.name)
            if spec.kind in ("classification", "regression"):
                outputs[spec.name] = {"logits": head(sequence_output[:, 0], training=training)}
            elif spec.kind == "tagging":
                outputs[spec.name] = {"logits": head(sequence_output, training=training)}
            else:
                outputs[spec.name] = head(sequence_output, features["input_mask"], features["segment_ids"],
                                          start_positions=features.get("start_positions"), training=training)
        return outputs

    def per_example_losses(self, features, outputs):
        """[B] losses: each example's from the head of its task (0 for padding examples)."""
        total = tf.zeros_like(tf.cast(features["task_id"], tf.float32))  # [B]
        for task_id, spec in enumerate(self.specs):
            out = outputs[spec.name]
            if spec.kind == "classification":
                loss = tf.nn.sparse_softmax_cross_entropy_with_logits(features["label_ids"], out["logits"])
            elif spec.kind == "regression":
                loss = tf.square(out["logits"] - features["label_value"])
            elif spec.kind == "tagging":
                # The sum over the sentence's tagged words, as the original (not their mean).
                weights = features["tag_weights"]  # [B, T]
                token_loss = tf.nn.sparse_softmax_cross_entropy_with_logits(
                    features["tag_ids"], out["logits"])  # [B, T]
                loss = tf.reduce_sum(token_loss * weights, -1)  # [B]
            else:
                start = tf.nn.sparse_softmax_cross_entropy_with_logits(features["start_positions"],
                                                                       out["start_logits"])
                end = tf.nn.sparse_softmax_cross_entropy_with_logits(features["end_positions"], out["end_logits"])
                loss = (start + end) / 2.0
                if "answerable_logit" in out:
                    loss += self.answerable_weight * tf.nn.sigmoid_cross_entropy_with_logits(
                        labels=features["is_impossible"], logits=out["answerable_logit"])
            total += tf.where(tf.equal(features["task_id"], task_id), loss, 0.0)
        return total
