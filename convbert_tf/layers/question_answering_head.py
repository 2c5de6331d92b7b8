"""QuestionAnsweringHead: ELECTRA's span head with joint start/end prediction and an answerable classifier.

Legend: B batch, T length, D hidden, K beam size, F = 512 hidden width of the joint layers.
"""

import keras
import tensorflow as tf

from convbert_tf import ops
from convbert_tf.layers.activations import gelu

# Logits of positions that cannot hold an answer are pushed down by this much.
NOT_ANSWER_PENALTY = 1000.0


@keras.saving.register_keras_serializable(package="convbert_tf")
class QuestionAnsweringHead(keras.layers.Layer):
    """Span prediction as the original's QA head (ELECTRA's `finetune/qa/qa_tasks.py`,
    `QATask.get_prediction_module`).

      answer_mask  = input_mask * segment_ids, plus position 0 ([CLS], "no answer")   [B, T]
      start_logits = Dense_1(h) - 1000 (1 - answer_mask)                               [B, T]
      joint: the end is conditioned on the start: end_logits = Dense_1(gelu(Dense_F(
             concat(h_start, h_t)))); during training h_start is the gold start's state,
             at inference each of the top-K starts is expanded (beam search)           [B, K, T]
      answerable_logit = Dense_1(gelu(Dense_F(concat(h_[CLS], sum_t p_start(t) h_t))))  [B]
        (the logit of "unanswerable": the original's null odds)

    Args:
      beam_size: K.
      joint_prediction: condition the end on the start (else independent start/end).
      answerable_classifier: add the answerable classifier.
      answerable_uses_start_logits: feed the start-probability-weighted state to it.
      hidden_size: F.

    Call args:
      sequence_output [B, T, D], input_mask [B, T], segment_ids [B, T],
      start_positions [B] (training only: the gold starts), training.

    Returns:
      start_logits [B, T], answerable_logit [B] (with the answerable classifier), and
      joint, training: end_logits [B, T] given the gold starts;
      joint, inference: start_top_log_probs / start_top_index [B, K] and
        end_top_log_probs / end_top_index [B, K, K] (no end_logits, as the original's zeros);
      independent: end_logits [B, T] (both masked like start_logits).
    """

    def __init__(self, beam_size=20, joint_prediction=True, answerable_classifier=True,
                 answerable_uses_start_logits=True, hidden_size=512, **kwargs):
        super().__init__(**kwargs)
        self.beam_size = beam_size
        self.joint_prediction = joint_prediction
        self.answerable_classifier = answerable_classifier
        self.answerable_uses_start_logits = answerable_uses_start_logits
        self.hidden_size = hidden_size
        policy = self.dtype_policy
        self.start_dense = keras.layers.Dense(1, dtype=policy, name="start_logits")
        self.end_dense = keras.layers.Dense(1, dtype=policy, name="end_logits")
        self.qa_hidden = keras.layers.Dense(hidden_size, activation=gelu, dtype=policy, name="qa_hidden") \
            if joint_prediction else None
        self.answerable_hidden = keras.layers.Dense(hidden_size, activation=gelu, dtype=policy,
                                                    name="answerable_hidden") \
            if answerable_classifier and answerable_uses_start_logits else None
        self.answerable_dense = keras.layers.Dense(1, dtype=policy, name="answerable_logit") \
            if answerable_classifier else None

    def build(self, sequence_shape, *args):
        width = sequence_shape[-1]
        self.start_dense.build((None, width))
        if self.qa_hidden is not None:
            self.qa_hidden.build((None, 2 * width))
            self.end_dense.build((None, self.hidden_size))
        else:
            self.end_dense.build((None, width))
        if self.answerable_hidden is not None:
            self.answerable_hidden.build((None, 2 * width))
            self.answerable_dense.build((None, self.hidden_size))
        elif self.answerable_dense is not None:
            self.answerable_dense.build((None, width))

    def call(self, sequence_output, input_mask, segment_ids, start_positions=None, training=None):
        hidden = ops.upcast_half(sequence_output)  # [B, T, D]
        length = tf.shape(hidden)[1]
        answer_mask = tf.cast(input_mask, tf.float32) * tf.cast(segment_ids, tf.float32)
        answer_mask += tf.one_hot(0, length)[None]  # [B, T]
        penalty = NOT_ANSWER_PENALTY * (1.0 - answer_mask)  # [B, T]
        start_logits = tf.squeeze(ops.upcast_half(self.start_dense(sequence_output)), -1) - penalty  # [B, T]
        outputs = {"start_logits": start_logits}
        if not self.joint_prediction:
            outputs["end_logits"] = tf.squeeze(ops.upcast_half(self.end_dense(sequence_output)), -1) - penalty
        elif training:
            start_states = tf.gather(hidden, start_positions, batch_dims=1)  # [B, D]
            joint = tf.concat([tf.broadcast_to(start_states[:, None], tf.shape(hidden)), hidden], -1)  # [B, T, 2D]
            end_logits = tf.squeeze(ops.upcast_half(self.end_dense(self.qa_hidden(joint))), -1)  # [B, T]
            outputs["end_logits"] = end_logits - penalty
        else:
            start_log_probs = tf.nn.log_softmax(start_logits)  # [B, T]
            top_log_probs, top_index = tf.math.top_k(start_log_probs, k=self.beam_size)  # [B, K]
            start_states = tf.gather(hidden, top_index, batch_dims=1)  # [B, K, D]
            shape = tf.concat([tf.shape(start_states)[:2], tf.shape(hidden)[1:]], 0)  # [B, K, T, D]
            joint = tf.concat([tf.broadcast_to(start_states[:, :, None], shape),
                               tf.broadcast_to(hidden[:, None], shape)], -1)  # [B, K, T, 2D]
            end_logits = tf.squeeze(ops.upcast_half(self.end_dense(self.qa_hidden(joint))), -1)  # [B, K, T]
            end_log_probs = tf.nn.log_softmax(end_logits - penalty[:, None])  # [B, K, T]
            end_top_log_probs, end_top_index = tf.math.top_k(end_log_probs, k=self.beam_size)  # [B, K, K]
            outputs.update(start_top_log_probs=top_log_probs, start_top_index=top_index,
                           end_top_log_probs=end_top_log_probs, end_top_index=end_top_index)
        if self.answerable_dense is not None:
            features = hidden[:, 0]  # [B, D]
            if self.answerable_hidden is not None:
                start_probs = tf.nn.softmax(start_logits)  # [B, T]
                weighted = tf.einsum("BT,BTD->BD", start_probs, hidden)  # [B, D]
                features = self.answerable_hidden(tf.concat([features, weighted], -1))  # [B, F]
            outputs["answerable_logit"] = tf.squeeze(ops.upcast_half(self.answerable_dense(features)), -1)  # [B]
        return outputs

    def get_config(self):
        config = super().get_config()
        config.update(beam_size=self.beam_size, joint_prediction=self.joint_prediction,
                      answerable_classifier=self.answerable_classifier,
                      answerable_uses_start_logits=self.answerable_uses_start_logits,
                      hidden_size=self.hidden_size)
        return config
