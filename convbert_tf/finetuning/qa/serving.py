"""Extractive QA served on raw text: doc-stride windows in the graph, the best span over all windows.

Legend: B questions, N context characters, W whitespace words, A basic words (the tokenizer's
words), P word pieces, D document word pieces of a context, M windows (of all questions),
Dm / Mm the longest context's pieces / windows, S max_seq_length, Q max_query_length, C span
candidates per window, K beam size. (X) marks a ragged dimension, ΣX the flat values of one.

The graph does what dev featurization and post-processing do in Python (`features.featurize_qa`,
`predictions.postprocess_qa`), with TensorFlow core ops and the tokenizer's tensorflow-text ops only:

Steps 1-3 live in `windows`:

1. `context_pieces`: the context is split into words at Python's whitespace, each word into
   word pieces by the tokenizer, and each piece keeps the character offsets of its text
   (`features.word_pieces`: per-character normalization, with the same fallbacks).
2. `doc_windows`, `max_context_windows`: the question keeps Q pieces; windows of
   S − |question| − 3 pieces start doc_stride apart (`features.doc_spans`), and each piece belongs to
   the window that gives it the most context (`features._is_max_context`).
3. `pack_windows`: one model row `[CLS] question [SEP] window [SEP]` per window.
4. `span_candidates`, `best_spans`, `null_odds`: the candidate spans of each window and their
   scores, as post-processing ranks them (joint beams or independent top n_best_size logits,
   in float64), the best legal one over all windows of a question (the first of equal scores in
   window, start, end order), and SQuAD 2.0's null odds.

`answer_text` serves raw text: the answer is the context's characters from the best span's
first piece to its last, the in-process `predictions.postprocess_qa` answer of the same model.
`answer_ids` serves rows the client packed, one window each, and answers with word pieces.
"""

from __future__ import annotations

import dataclasses

import tensorflow as tf

from convbert_tf.finetuning.qa.windows import context_pieces, pack_windows

# The null odds served for tasks without unanswerable questions, whose answers are never blanked.
NO_NULL_ODDS = -1e30
# Head outputs each mode reads, and their dtypes.
_OUTPUT_DTYPES = {"start_logits": tf.float32, "end_logits": tf.float32, "answerable_logit": tf.float32,
                  "start_top_log_probs": tf.float32, "start_top_index": tf.int32, "end_top_log_probs": tf.float32,
                  "end_top_index": tf.int32}


@dataclasses.dataclass(frozen=True)
class QAServingConfig:
    """The hparams serving applies, as dev post-processing does (names as `FinetuningHParams`)."""

    max_seq_length: int = 128
    """S."""
    max_query_length: int = 64
    """Question pieces kept."""
    doc_stride: int = 128
    """Offset between consecutive windows."""
    n_best_size: int = 20
    """Start and end candidates per window without joint prediction."""
    max_answer_length: int = 30
    """Longest answer in pieces."""
    na_threshold: float = -2.75
    """SQuAD 2.0 answers with null odds above this are blanked."""
    version_2: bool = False
    """The task has unanswerable questions (null odds)."""
    joint_prediction: bool = True
    """The head's mode: beams, else independent start and end logits."""
    answerable_classifier: bool = True
    """The head has the answerable classifier (the null odds of SQuAD 2.0)."""
    window_batch_size: int = 32
    """Windows run through the model at a time (bounds memory for long contexts)."""

    def __post_init__(self):
        room = self.max_seq_length - self.max_query_length - 3
        if room < 1 or self.doc_stride < 1 or self.window_batch_size < 1:
            raise ValueError(f"QA serving needs max_seq_length - max_query_length - 3 >= 1 (got {self.max_seq_length} "
                             f"- {self.max_query_length} - 3 = {room}), doc_stride >= 1 (got {self.doc_stride}) and "
                             f"window_batch_size >= 1 (got {self.window_batch_size})")

    def output_keys(self) -> tuple:
        """The head outputs this mode reads."""
        keys = ("start_top_log_probs", "start_top_index", "end_top_log_probs", "end_top_index", "start_logits") \
            if self.joint_prediction else ("start_logits", "end_logits")
        return keys + (("answerable_logit",) if self.answerable_classifier else ())


# ----------------------------------------------------------------------------------------------
# Spans.


def span_candidates(outputs, in_doc, max_context, config: QAServingConfig):
    """Each window's candidate spans as `predictions.postprocess_qa` enumerates them (window, start, end order).

    Args:
      outputs: the head's outputs for M windows (`config.output_keys()`).
      in_doc, max_context: bool [M, S] (see `Windows`).

    Returns:
      (starts, ends, start_scores, end_scores, legal): [M, C] each; positions int32, scores
      float64; `legal` marks the spans post-processing keeps.
    """
    if config.joint_prediction:
        ends = outputs["end_top_index"]  # [M, K, K]
        starts = tf.broadcast_to(outputs["start_top_index"][:, :, None], tf.shape(ends))  # [M, K, K]
        start_scores = tf.broadcast_to(tf.cast(outputs["start_top_log_probs"], tf.float64)[:, :, None],
                                       tf.shape(ends))  # [M, K, K]
        end_scores = tf.cast(outputs["end_top_log_probs"], tf.float64)  # [M, K, K]
    else:
        k = tf.minimum(config.n_best_size, tf.shape(outputs["start_logits"])[1])
        start_top = tf.math.top_k(outputs["start_logits"], k).indices  # [M, k], ties: lower position first
        end_top = tf.math.top_k(outputs["end_logits"], k).indices  # [M, k]
        shape = tf.stack([tf.shape(start_top)[0], k, k])
        starts = tf.broadcast_to(start_top[:, :, None], shape)  # [M, k, k]
        ends = tf.broadcast_to(end_top[:, None, :], shape)  # [M, k, k]
        start_scores = tf.gather(tf.cast(outputs["start_logits"], tf.float64), starts, batch_dims=1)  # [M, k, k]
        end_scores = tf.gather(tf.cast(outputs["end_logits"], tf.float64), ends, batch_dims=1)  # [M, k, k]
    starts, ends, start_scores, end_scores = (tf.reshape(x, [tf.shape(x)[0], -1])
                                              for x in (starts, ends, start_scores, end_scores))  # [M, C] each
    legal = (tf.gather(max_context, starts, batch_dims=1) & tf.gather(in_doc, ends, batch_dims=1) &
             (ends >= starts) & (ends - starts < config.max_answer_length))  # [M, C]
    return starts, ends, start_scores, end_scores, legal


def best_spans(scores, legal, per_question):
    """Each question's best legal candidate over its windows: the first of the highest score in
    (window, candidate) order, as post-processing's stable sort ranks them.

    Args:
      scores: float64 [M, C]; legal: bool [M, C]; per_question: int32 [B], windows per question
        (rows of one question are consecutive).

    Returns:
      (row, candidate, found): int32 [B] window row and candidate column, bool [B] (False: no
      legal span; row and candidate are then 0).
    """
    width = tf.shape(scores)[1]

    def by_question(values, padding):  # [M, C] -> [B, Mm·C]
        return tf.RaggedTensor.from_row_lengths(tf.reshape(values, [-1]), per_question * width).to_tensor(padding)

    legal = by_question(legal, False)  # [B, Mm·C]
    scores = tf.where(legal, by_question(scores, 0.0), -float("inf"))  # [B, Mm·C]
    top = legal & tf.equal(scores, tf.reduce_max(scores, -1, keepdims=True))  # [B, Mm·C]
    size = tf.shape(scores)[1]
    first = tf.reduce_min(tf.where(top, tf.range(size)[None], size), -1)  # [B]
    found = first < size
    first = tf.where(found, first, 0)
    row = tf.cumsum(per_question, exclusive=True) + first // width  # [B]
    return tf.where(found, row, 0), first % width, found


def null_odds(outputs, windows_question, num_questions, best_start_score, best_end_score, config):
    """SQuAD 2.0 null odds of each question, float64 [B] (`predictions._null_odds`): the minimum answerable
    logit over its windows, or without the classifier min(start_logits[0] + end_logits[0]) minus
    the best span's scores (0 for none); end_logits count 0 in joint mode, as the original's."""
    if config.answerable_classifier:
        return tf.math.unsorted_segment_min(tf.cast(outputs["answerable_logit"], tf.float64), windows_question,
                                            num_questions)  # [B]
    null = tf.cast(outputs["start_logits"][:, 0], tf.float64)  # [M]
    if not config.joint_prediction:
        null += tf.cast(outputs["end_logits"][:, 0], tf.float64)
    return tf.math.unsorted_segment_min(null, windows_question, num_questions) - best_start_score - best_end_score


# ----------------------------------------------------------------------------------------------
# The signatures' work.


def run_windows(run_head, inputs, config: QAServingConfig) -> dict:
    """`run_head` (model inputs [m, S] -> head outputs) over all window rows, window_batch_size at
    a time, so that a long context does not hold all its windows' activations at once."""
    keys = config.output_keys()
    size = config.window_batch_size
    count = tf.shape(inputs["input_ids"])[0]
    chunks = (count + size - 1) // size
    chunked = {key: tf.reshape(tf.pad(value, [[0, chunks * size - count], [0, 0]]), [chunks, size, -1])
               for key, value in inputs.items()}  # [chunks, size, S] each; padding rows are all zero

    def run_chunk(chunk):
        outputs = run_head(chunk)
        return {key: outputs[key] for key in keys}

    outputs = tf.map_fn(run_chunk, chunked, parallel_iterations=1,
                        fn_output_signature={key: tf.TensorSpec(None, _OUTPUT_DTYPES[key]) for key in keys})
    return {key: tf.reshape(value, tf.concat([[chunks * size], tf.shape(value)[2:]], 0))[:count]
            for key, value in outputs.items()}  # [M, ...] each


def _best_answer(outputs, in_doc, max_context, per_question, config: QAServingConfig):
    """The best legal span of each question: (row, start, end positions, found, null_odds float64 [B])."""
    starts, ends, start_scores, end_scores, legal = span_candidates(outputs, in_doc, max_context, config)
    row, column, found = best_spans(start_scores + end_scores, legal, per_question)  # [B] each

    def pick(values):  # [M, C] -> [B], the best candidate's
        return tf.gather(tf.gather(values, row), column, batch_dims=1)

    num_questions = tf.shape(per_question)[0]
    if config.version_2:
        question_of_row = tf.repeat(tf.range(num_questions), per_question)  # [M]
        odds = null_odds(outputs, question_of_row, num_questions, tf.where(found, pick(start_scores), 0.0),
                         tf.where(found, pick(end_scores), 0.0), config)  # [B]
    else:
        odds = tf.fill([num_questions], tf.constant(NO_NULL_ODDS, tf.float64))
    return row, pick(starts), pick(ends), found, odds


def _served(answer, start, end, found, odds, config: QAServingConfig) -> dict:
    """The signature's outputs: the answer blanked above the null threshold (SQuAD 2.0) or when
    no span is legal, start and end -1 when no span is legal."""
    blank = ~found | (odds > config.na_threshold if config.version_2 else False)
    return {"answer": tf.where(blank, "", answer), "start": tf.where(found, start, -1),
            "end": tf.where(found, end, -1), "null_odds": tf.cast(odds, tf.float32)}


def answer_text(run_head, tokenizer, vocab, question, context, config: QAServingConfig) -> dict:
    """Serving over raw text, every window of each context (see the module docstring).

    Args:
      run_head: model inputs {input_ids, input_mask, segment_ids} [m, S] -> head outputs.
      tokenizer: a `WordPieceTokenizerModule`; vocab: string [V].
      question, context: string [B].

    Returns:
      answer string [B] (the context's characters [start, end), "" for no answer), start and
      end int32 [B] character offsets of the best span (before the null threshold; -1 when no
      span is legal), null_odds float32 [B] (SQuAD 2.0; NO_NULL_ODDS otherwise).
    """
    question_ids = tokenizer(question)[:, :config.max_query_length]  # [B, (≤Q)]
    doc_ids, char_starts, char_ends = context_pieces(tokenizer, vocab, context)  # [B, (D)] each
    windows = pack_windows(tokenizer, question_ids, doc_ids, config)
    outputs = run_windows(run_head, windows.inputs, config)  # [M, ...]
    row, start, end, found, odds = _best_answer(outputs, windows.in_doc, windows.max_context, windows.per_question,
                                                config)  # [B] each
    base = tf.gather(windows.start, row) - tf.gather(windows.offset, row)  # [B], document piece at position 0

    def at_piece(values, positions):  # ragged [B, (D)] at the best window's row positions [B]
        return tf.gather(tf.pad(values.to_tensor(), [[0, 0], [0, 1]]), tf.maximum(base + positions, 0), batch_dims=1)

    first_char, end_char = at_piece(char_starts, start), at_piece(char_ends, end)  # [B] each
    answer = tf.strings.substr(context, first_char, tf.maximum(end_char - first_char, 0), unit="UTF8_CHAR")
    return _served(answer, first_char, end_char, found, odds, config)


def answer_ids(run_head, vocab, inputs, config: QAServingConfig) -> dict:
    """Serving over packed rows `[CLS] question [SEP] context [SEP]` [B, S], one window each.

    Returns:
      answer string [B] (the span's word pieces, "##" joined), start and end int32 [B] token
      positions in input_ids (inclusive; -1 when no span is legal), null_odds float32 [B].
    """
    input_ids, input_mask, segment_ids = (inputs[k] for k in ("input_ids", "input_mask", "segment_ids"))
    position = tf.range(tf.shape(input_ids)[1])[None]  # [1, S]
    real = tf.reduce_sum(input_mask, -1, keepdims=True)  # [B, 1]
    in_doc = tf.equal(segment_ids, 1) & tf.equal(input_mask, 1) & (position < real - 1)  # [B, S]: not the [SEP]
    outputs = run_windows(run_head, inputs, config)  # [B, ...]
    _, start, end, found, odds = _best_answer(outputs, in_doc, in_doc, tf.ones_like(real[:, 0]), config)
    in_span = (position >= start[:, None]) & (position <= end[:, None])  # [B, S]
    pieces = tf.ragged.boolean_mask(tf.gather(vocab, input_ids), in_span)  # [B, (A)]
    answer = tf.strings.regex_replace(tf.strings.reduce_join(pieces, axis=-1, separator=" "), " ##", "")
    return _served(answer, start, end, found, odds, config)
