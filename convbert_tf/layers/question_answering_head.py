"""QuestionAnsweringHead: ELECTRA's span head with joint start/end prediction and an answerable classifier.

Legend: B batch, T length, D hidden, K beam size, F = 512 hidden width of the joint layers.
"""

import keras

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
        length = ops.shape_list(hidden)[1]
        answer_mask = keras.ops.cast(input_mask, "float32") * keras.ops.cast(segment_ids, "float32")
        answer_mask += keras.ops.cast(keras.ops.arange(length) == 0, "float32")[None]  # [B, T]
        penalty = NOT_ANSWER_PENALTY * (1.0 - answer_mask)  # [B, T]
        start_logits = self._logits(self.start_dense, sequence_output) - penalty  # [B, T]
        outputs = {"start_logits": start_logits}
        if not self.joint_prediction:
            outputs["end_logits"] = self._logits(self.end_dense, sequence_output) - penalty
        elif training:
            start_states = ops.take_rows(hidden, start_positions)  # [B, D]
            outputs["end_logits"] = self._end_logits(start_states, hidden) - penalty  # [B, T]
        else:
            outputs.update(self._beam(start_logits, hidden, penalty))
        if self.answerable_dense is not None:
            outputs["answerable_logit"] = self._answerable_logit(start_logits, hidden)  # [B]
        return outputs

    @staticmethod
    def _logits(dense, inputs):
        """A width-1 dense layer's output without its last axis, in >= float32: [..., D] -> [...]."""
        return keras.ops.squeeze(ops.upcast_half(dense(inputs)), -1)

    def _end_logits(self, start_states, hidden):
        """End logits given start states [B, D] (the gold starts) or [B, K, D] (the beam): [B, T] or [B, K, T]."""
        batch_shape = ops.shape_list(start_states)[:-1]  # [B] or [B, K]
        shape = batch_shape + ops.shape_list(hidden)[1:]  # [B, (K,) T, D]
        lead = (slice(None),) * len(batch_shape)
        starts = keras.ops.broadcast_to(start_states[lead + (None,)], shape)
        tokens = keras.ops.broadcast_to(hidden if len(batch_shape) == 1 else hidden[:, None], shape)
        return self._logits(self.end_dense, self.qa_hidden(keras.ops.concatenate([starts, tokens], -1)))

    def _beam(self, start_logits, hidden, penalty):
        """Inference of the joint head: the top-K starts, and for each the top-K ends (K = beam size)."""
        start_log_probs = keras.ops.log_softmax(start_logits)  # [B, T]
        top_log_probs, top_index = keras.ops.top_k(start_log_probs, k=self.beam_size)  # [B, K]
        start_states = ops.take_rows(hidden, top_index)  # [B, K, D]
        end_logits = self._end_logits(start_states, hidden)  # [B, K, T]
        end_log_probs = keras.ops.log_softmax(end_logits - penalty[:, None])  # [B, K, T]
        end_top_log_probs, end_top_index = keras.ops.top_k(end_log_probs, k=self.beam_size)  # [B, K, K]
        return dict(start_top_log_probs=top_log_probs, start_top_index=top_index,
                    end_top_log_probs=end_top_log_probs, end_top_index=end_top_index)

    def _answerable_logit(self, start_logits, hidden):
        """The "unanswerable" logit from the [CLS] state (and the start-weighted state): [B]."""
        features = hidden[:, 0]  # [B, D]
        if self.answerable_hidden is not None:
            start_probs = keras.ops.softmax(start_logits)  # [B, T]
            weighted = ops.einsum("BT,BTD->BD", start_probs, hidden)  # [B, D]
            features = self.answerable_hidden(keras.ops.concatenate([features, weighted], -1))  # [B, F]
        return self._logits(self.answerable_dense, features)

    def get_config(self):
        config = super().get_config()
        config.update(beam_size=self.beam_size, joint_prediction=self.joint_prediction,
                      answerable_classifier=self.answerable_classifier,
                      answerable_uses_start_logits=self.answerable_uses_start_logits,
                      hidden_size=self.hidden_size)
        return config
