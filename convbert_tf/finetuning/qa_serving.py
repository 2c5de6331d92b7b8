"""Extractive QA served on raw text: doc-stride windows in the graph, the best span over all windows.

Legend: B questions, N context characters, W whitespace words, A basic words (the tokenizer's
words), P word pieces, D document word pieces of a context, M windows (of all questions),
Dm / Mm the longest context's pieces / windows, S max_seq_length, Q max_query_length, C span
candidates per window, K beam size. (X) marks a ragged dimension, ΣX the flat values of one.

The graph does what dev featurization and post-processing do in Python (`qa.featurize_qa`,
`qa.postprocess_qa`), with TensorFlow core ops and the tokenizer's tensorflow-text ops only:

1. `context_pieces`: the context is split into words at Python's whitespace, each word into
   word pieces by the tokenizer, and each piece keeps the character offsets of its text
   (`qa.word_pieces`: per-character normalization, with the same fallbacks).
2. `doc_windows`, `max_context_windows`: the question keeps Q pieces; windows of
   S − |question| − 3 pieces start doc_stride apart (`qa.doc_spans`), and each piece belongs to
   the window that gives it the most context (`qa._is_max_context`).
3. `pack_windows`: one model row `[CLS] question [SEP] window [SEP]` per window.
4. `span_candidates`, `best_spans`, `null_odds`: the candidate spans of each window and their
   scores, as post-processing ranks them (joint beams or independent top n_best_size logits,
   in float64), the best legal one over all windows of a question (the first of equal scores in
   window, start, end order), and SQuAD 2.0's null odds.

`answer_text` serves raw text: the answer is the context's characters from the best span's
first piece to its last, the in-process `qa.postprocess_qa` answer of the same model.
`answer_ids` serves rows the client packed, one window each, and answers with word pieces.
"""

from __future__ import annotations

import dataclasses

import tensorflow as tf

from convbert_tf.data.tokenization import CLS_TOKEN, PAD_TOKEN, SEP_TOKEN, UNK_TOKEN
from convbert_tf.text_inputs import special_token_id

# The characters Python's str.isspace() accepts, where qa.split_context splits words.
PYTHON_WHITESPACE = (r"[\t\n\x{0B}\x{0C}\r\x{1C}-\x{1F} \x{85}\x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}"
                     r"\x{202F}\x{205F}\x{3000}]")
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
# Context word pieces with character offsets.


def _exclusive_cumsum(ragged):
    """Exclusive cumulative sums along the last (ragged) dimension of `ragged`."""
    values = ragged.flat_values  # [ΣX]
    splits = ragged.nested_row_splits[-1]  # [rows + 1]
    totals = tf.concat([tf.zeros([1], values.dtype), tf.cumsum(values)], 0)  # [ΣX + 1]: sums before each
    row_ids = tf.ragged.row_splits_to_segment_ids(splits)  # [ΣX]
    return ragged.with_flat_values(totals[:-1] - tf.gather(totals, tf.gather(splits, row_ids)))


@dataclasses.dataclass
class _Words:
    """A batch of contexts split into words at Python's whitespace (`qa.split_context`).

    Attributes:
      chars: string [ΣN], every character. position: int32 [ΣN], its index in its context.
      word: int32 [ΣN], the word of each character (-1 for whitespace).
      words: string [ΣW]. first_char: int32 [ΣW], the flat index of each word's first character.
      length: int32 [ΣW], its characters. per_context: int32 [B], words per context.
    """

    chars: tf.Tensor
    position: tf.Tensor
    word: tf.Tensor
    words: tf.Tensor
    first_char: tf.Tensor
    length: tf.Tensor
    per_context: tf.Tensor


def _split_words(context) -> _Words:
    """The contexts' whitespace-separated words, as flat tensors over all contexts."""
    chars = tf.strings.unicode_split(context, "UTF-8")  # [B, (N)]
    flat_chars = chars.flat_values  # [ΣN]
    position = tf.cast(tf.ragged.range(chars.row_lengths()).flat_values, tf.int32)  # [ΣN]
    in_word = ~tf.strings.regex_full_match(flat_chars, PYTHON_WHITESPACE)  # [ΣN]
    follows_word = tf.concat([[False], in_word], 0)[:-1] & (position > 0)  # [ΣN]
    starts_word = in_word & ~follows_word  # [ΣN]
    word = tf.where(in_word, tf.cumsum(tf.cast(starts_word, tf.int32)) - 1, -1)  # [ΣN]
    num_words = tf.reduce_sum(tf.cast(starts_word, tf.int32))
    words = tf.strings.unsorted_segment_join(tf.boolean_mask(flat_chars, in_word), tf.boolean_mask(word, in_word),
                                             num_words)  # [ΣW]
    return _Words(
        chars=flat_chars, position=position, word=word, words=words,
        first_char=tf.cast(tf.where(starts_word)[:, 0], tf.int32),  # [ΣW]
        length=tf.math.unsorted_segment_sum(tf.ones_like(word), word, num_words),  # [ΣW]; -1 is dropped
        per_context=tf.math.unsorted_segment_sum(tf.cast(starts_word, tf.int32), chars.value_rowids(),
                                                 tf.shape(context)[0]))  # [B]


def _normalized_origins(tokenizer, words: _Words, basics):
    """Each character normalized on its own (`qa._normalized_chars`), and whether each word's
    basic words can be traced through it.

    Returns:
      origins: int32 [Σ normalized characters + 1], the flat index of the character each
        normalized character came from (plus a final 0, so that gathers never see it empty).
      word_base: int32 [ΣW], the origins index of each word's first normalized character.
      traced: bool [ΣW], whether the word's basic words, concatenated, begin its per-character
        normalization (else its pieces take the whole word's offsets).
    """
    normalized = tf.strings.reduce_join(tokenizer.split_words(words.chars), axis=-1)  # [ΣN]
    normalized_length = tf.where(words.word >= 0, tf.strings.length(normalized, unit="UTF8_CHAR"), 0)  # [ΣN]
    origins = tf.concat([tf.repeat(tf.range(tf.size(words.chars)), normalized_length), [0]], 0)
    word_base = tf.gather(tf.cumsum(normalized_length, exclusive=True), words.first_char)  # [ΣW]
    in_word = words.word >= 0
    normalized_words = tf.strings.unsorted_segment_join(tf.boolean_mask(normalized, in_word),
                                                        tf.boolean_mask(words.word, in_word),
                                                        tf.size(words.words))  # [ΣW]
    joined = tf.strings.reduce_join(basics, axis=-1)  # [ΣW]
    joined_length = tf.strings.length(joined, unit="UTF8_CHAR")  # [ΣW]
    traced = tf.equal(tf.strings.substr(normalized_words, tf.zeros_like(joined_length), joined_length,
                                        unit="UTF8_CHAR"), joined)  # [ΣW]
    return origins, word_base, traced


def _piece_lengths(tokenizer, vocab, basics, pieces):
    """Each piece's normalized length, and whether a basic word's pieces add up to it (`qa._piece_lengths`).

    Args: basics ragged [ΣW, (A)] strings; pieces ragged [ΣA, (P)] ids. Returns ([ΣP], [ΣA]).
    """
    basic_length = tf.strings.length(basics.flat_values, unit="UTF8_CHAR")  # [ΣA]
    basic_of_piece = pieces.value_rowids()  # [ΣP]
    texts = tf.gather(vocab, pieces.flat_values)  # [ΣP]
    continuation = (tf.ragged.range(pieces.row_lengths()).flat_values > 0) & \
        tf.strings.regex_full_match(texts, "##.*")  # [ΣP]
    length = tf.strings.length(texts, unit="UTF8_CHAR") - 2 * tf.cast(continuation, tf.int32)  # [ΣP]
    whole_unknown = tf.gather((pieces.row_lengths() == 1) & tf.not_equal(basics.flat_values, UNK_TOKEN),
                              basic_of_piece) & tf.equal(pieces.flat_values, special_token_id(tokenizer, UNK_TOKEN))
    length = tf.where(whole_unknown, tf.gather(basic_length, basic_of_piece), length)  # [ΣP]
    num_basics = tf.shape(basic_length)[0]
    total = tf.math.unsorted_segment_sum(length, basic_of_piece, num_basics)  # [ΣA]
    empty = tf.math.unsorted_segment_sum(tf.cast(length <= 0, tf.int32), basic_of_piece, num_basics)  # [ΣA]
    return length, tf.equal(total, basic_length) & tf.equal(empty, 0)


def _piece_ranges(tokenizer, vocab, basics, pieces):
    """Each piece's first and last normalized character within its word ([ΣP] each): its own
    characters when its basic word's pieces add up to that word, else the basic word's."""
    piece_length, add_up = _piece_lengths(tokenizer, vocab, basics, pieces)  # [ΣP], [ΣA]
    basic_length = tf.strings.length(basics.flat_values, unit="UTF8_CHAR")  # [ΣA]
    basic_start = _exclusive_cumsum(basics.with_flat_values(basic_length)).flat_values  # [ΣA], in its word
    piece_start = _exclusive_cumsum(pieces.with_flat_values(piece_length)).flat_values  # [ΣP], in its basic
    basic_of_piece = pieces.value_rowids()  # [ΣP]
    add_up = tf.gather(add_up, basic_of_piece)  # [ΣP]
    first = tf.gather(basic_start, basic_of_piece) + tf.where(add_up, piece_start, 0)  # [ΣP]
    return first, first + tf.where(add_up, piece_length, tf.gather(basic_length, basic_of_piece)) - 1


def context_pieces(tokenizer, vocab, context):
    """Each context's document word pieces and their character spans, as `qa.featurize_qa` makes them.

    Args:
      tokenizer: a `WordPieceTokenizerModule`.
      vocab: string [V], the vocab.
      context: string [B].

    Returns:
      (ids, char_starts, char_ends): ragged int32 [B, (D)]; piece d covers context characters
      [char_starts, char_ends) (code points, as Python indexes strings).
    """
    words = _split_words(context)
    basics = tokenizer.split_words(words.words)  # [ΣW, (A)]
    pieces = tokenizer(basics.flat_values)  # [ΣA, (P)], as qa.word_pieces tokenizes each basic word
    origins, word_base, traced = _normalized_origins(tokenizer, words, basics)
    first, last = _piece_ranges(tokenizer, vocab, basics, pieces)  # [ΣP] each
    word_of_piece = tf.gather(basics.value_rowids(), pieces.value_rowids())  # [ΣP]
    base = tf.gather(word_base, word_of_piece)  # [ΣP]
    limit = tf.size(origins) - 1

    def origin(normalized_index):  # [ΣP] -> the character's position in its context
        return tf.gather(words.position, tf.gather(origins, tf.clip_by_value(normalized_index, 0, limit)))

    word_start = tf.gather(words.position, tf.gather(words.first_char, word_of_piece))  # [ΣP]
    piece_traced = tf.gather(traced, word_of_piece)  # [ΣP]
    char_starts = tf.where(piece_traced, origin(base + first), word_start)  # [ΣP]
    char_ends = tf.where(piece_traced, origin(base + last) + 1,
                         word_start + tf.gather(words.length, word_of_piece))  # [ΣP]
    pieces_per_word = tf.math.unsorted_segment_sum(tf.ones_like(word_of_piece, tf.int32), word_of_piece,
                                                   tf.size(words.words))  # [ΣW]
    per_context = tf.reduce_sum(tf.RaggedTensor.from_row_lengths(pieces_per_word, words.per_context), -1)  # [B]
    return tuple(tf.RaggedTensor.from_row_lengths(values, per_context)
                 for values in (pieces.flat_values, char_starts, char_ends))  # [B, (D)] each


# ----------------------------------------------------------------------------------------------
# Windows and model rows.


def doc_windows(doc_lengths, max_doc_tokens, doc_stride):
    """`qa.doc_spans` per context: windows of at most max_doc_tokens pieces, each starting
    min(max_doc_tokens, doc_stride) after the previous, the last reaching the end; an empty
    document gets one empty window.

    Args:
      doc_lengths, max_doc_tokens: int32 [B] (max_doc_tokens >= 1).
      doc_stride: a positive int.

    Returns:
      (starts, lengths): ragged int32 [B, (M)].
    """
    step = tf.minimum(max_doc_tokens, doc_stride)  # [B]
    count = 1 + tf.maximum(0, (doc_lengths - max_doc_tokens + step - 1) // step)  # [B]
    starts = tf.ragged.range(count) * step[:, None]  # [B, (M)]
    return starts, tf.minimum(doc_lengths[:, None] - starts, max_doc_tokens[:, None])


def max_context_windows(starts, lengths, num_pieces):
    """For each document piece, the index of the window giving it the most context (`qa._is_max_context`:
    min(left, right) + 0.01 · window length, in float64; the first window wins a tie).

    Args:
      starts, lengths: ragged int32 [B, (M)] windows; num_pieces: Dm, pieces to cover.

    Returns:
      int32 [B, Dm] (Mm where no window holds the piece).
    """
    start = starts.to_tensor()[:, :, None]  # [B, Mm, 1]
    length = lengths.to_tensor()[:, :, None]  # [B, Mm, 1]; padding windows have length 0
    end = start + length - 1  # [B, Mm, 1]
    piece = tf.range(num_pieces)[None, None]  # [1, 1, Dm]
    holds = (piece >= start) & (piece <= end)  # [B, Mm, Dm]
    score = tf.cast(tf.minimum(piece - start, end - piece), tf.float64) + 0.01 * tf.cast(length, tf.float64)
    score = tf.where(holds, score, -float("inf"))  # [B, Mm, Dm]
    best = holds & tf.equal(score, tf.reduce_max(score, axis=1, keepdims=True))  # [B, Mm, Dm]
    windows = tf.shape(start)[1]
    return tf.reduce_min(tf.where(best, tf.range(windows)[None, :, None], windows), axis=1)  # [B, Dm]


@dataclasses.dataclass
class Windows:
    """Model rows of all windows, in question order, and where their pieces come from.

    Attributes:
      inputs: input_ids, input_mask, segment_ids int32 [M, S].
      start: int32 [M], the window's first document piece.
      offset: int32 [M], the row position of the window's first piece (|question| + 2).
      per_question: int32 [B], windows per question.
      in_doc, max_context: bool [M, S], row positions holding a document piece / one whose max
        context window this is.
    """

    inputs: dict
    start: tf.Tensor
    offset: tf.Tensor
    per_question: tf.Tensor
    in_doc: tf.Tensor
    max_context: tf.Tensor


def pack_windows(tokenizer, question_ids, doc_ids, config: QAServingConfig) -> Windows:
    """One `[CLS] question [SEP] window [SEP]` row per doc-stride window (`qa.featurize_qa`).

    Args:
      tokenizer: the `WordPieceTokenizerModule` (for the special ids).
      question_ids: ragged int32 [B, (≤Q)], already cut to max_query_length.
      doc_ids: ragged int32 [B, (D)].
    """
    seq_length = config.max_seq_length
    question_length = tf.cast(question_ids.row_lengths(), tf.int32)  # [B]
    starts, lengths = doc_windows(tf.cast(doc_ids.row_lengths(), tf.int32), seq_length - question_length - 3,
                                  config.doc_stride)  # [B, (M)]
    questions = tf.cast(question_ids.to_tensor(shape=[None, config.max_query_length]), tf.int32)  # [B, Q]
    docs = tf.cast(doc_ids.to_tensor(), tf.int32)  # [B, Dm]
    num_pieces = tf.shape(docs)[1]
    best_window = max_context_windows(starts, lengths, num_pieces)  # [B, Dm]
    docs = tf.pad(docs, [[0, 0], [0, 1]])  # [B, Dm + 1], so that gathers never index an empty row

    question = tf.cast(starts.value_rowids(), tf.int32)  # [M]
    index = tf.cast(tf.ragged.range(starts.row_lengths()).flat_values, tf.int32)  # [M]
    start, length = starts.flat_values, lengths.flat_values  # [M]
    offset = tf.gather(question_length, question) + 2  # [M]
    position = tf.range(seq_length)[None]  # [1, S]
    piece = position - offset[:, None]  # [M, S], window piece at each position
    in_doc = (piece >= 0) & (piece < length[:, None])  # [M, S]
    doc_piece = tf.clip_by_value(start[:, None] + piece, 0, num_pieces)  # [M, S]
    question_piece = tf.broadcast_to(tf.clip_by_value(position - 1, 0, config.max_query_length - 1),
                                     tf.shape(piece))  # [M, S]
    cls_id, sep_id, pad_id = (special_token_id(tokenizer, t) for t in (CLS_TOKEN, SEP_TOKEN, PAD_TOKEN))
    ids = tf.where(tf.equal(piece, length[:, None]), sep_id, pad_id)  # [M, S]: the closing [SEP]
    ids = tf.where(in_doc, tf.gather(tf.gather(docs, question), doc_piece, batch_dims=1), ids)
    ids = tf.where(tf.equal(piece, -1), sep_id, ids)
    ids = tf.where((position > 0) & (piece < -1),
                   tf.gather(tf.gather(questions, question), question_piece, batch_dims=1), ids)
    ids = tf.where(tf.equal(position, 0), cls_id, ids)  # [M, S]
    input_mask = piece <= length[:, None]  # [M, S]
    best_window = tf.pad(best_window, [[0, 0], [0, 1]], constant_values=-1)  # [B, Dm + 1]
    max_context = in_doc & tf.equal(tf.gather(tf.gather(best_window, question), doc_piece, batch_dims=1),
                                    index[:, None])  # [M, S]
    inputs = {"input_ids": ids, "input_mask": tf.cast(input_mask, tf.int32),
              "segment_ids": tf.cast(input_mask & (piece >= 0), tf.int32)}
    return Windows(inputs, start, offset, tf.cast(starts.row_lengths(), tf.int32), in_doc, max_context)


# ----------------------------------------------------------------------------------------------
# Spans.


def span_candidates(outputs, in_doc, max_context, config: QAServingConfig):
    """Each window's candidate spans as `qa.postprocess_qa` enumerates them (window, start, end order).

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
    """SQuAD 2.0 null odds of each question, float64 [B] (`qa._null_odds`): the minimum answerable
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
