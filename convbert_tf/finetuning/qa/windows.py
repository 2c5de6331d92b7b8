"""QA serving's windows in the graph: a raw context's word pieces with character offsets, its
doc-stride windows with their max-context pieces, and one model row per window.

Legend: B questions, N context characters, W whitespace words, A basic words (the tokenizer's
words), P word pieces, D document word pieces of a context, M windows (of all questions),
Dm the longest context's pieces, S max_seq_length, Q max_query_length. (X) marks a ragged
dimension, ΣX the flat values of one.

Each function is the graph twin of dev featurization in Python (`features.word_pieces`,
`features.doc_spans`, `features._is_max_context`, `features.featurize_qa`), tested against it, with TensorFlow core
ops and the tokenizer's tensorflow-text ops only. `serving` picks the answers.
"""

from __future__ import annotations

import dataclasses

import tensorflow as tf

from convbert_tf.data.tokenization import CLS_TOKEN, PAD_TOKEN, SEP_TOKEN, UNK_TOKEN
from convbert_tf.text_inputs import special_token_id

# The characters Python's str.isspace() accepts, where reading.split_context splits words.
PYTHON_WHITESPACE = (r"[\t\n\x{0B}\x{0C}\r\x{1C}-\x{1F} \x{85}\x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}"
                     r"\x{202F}\x{205F}\x{3000}]")

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
    """A batch of contexts split into words at Python's whitespace (`reading.split_context`).

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
    """Each character normalized on its own (`features._normalized_chars`), and whether each word's
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
    """Each piece's normalized length, and whether a basic word's pieces add up to it (`features._piece_lengths`).

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
    """Each context's document word pieces and their character spans, as `features.featurize_qa` makes them.

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
    pieces = tokenizer(basics.flat_values)  # [ΣA, (P)], as features.word_pieces tokenizes each basic word
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
    """`features.doc_spans` per context: windows of at most max_doc_tokens pieces, each starting
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
    """For each document piece, the index of the window giving it the most context (`features._is_max_context`:
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


def pack_windows(tokenizer, question_ids, doc_ids, config) -> Windows:
    """One `[CLS] question [SEP] window [SEP]` row per doc-stride window (`features.featurize_qa`).

    Args:
      tokenizer: the `WordPieceTokenizerModule` (for the special ids).
      question_ids: ragged int32 [B, (≤Q)], already cut to max_query_length.
      doc_ids: ragged int32 [B, (D)].
      config: a `serving.QAServingConfig` (read: max_seq_length, max_query_length, doc_stride).
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
