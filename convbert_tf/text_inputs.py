"""Graph-mode packing of raw text into encoder inputs: tokenize, truncate longest-first, add specials, pad.

Legend: B batch, T max_seq_length, A / Bt tokens of the first / second text (ragged).

The layout and truncation are those of BERT's and ELECTRA's fine-tuning code
(`convert_single_example` / `featurize` with `_truncate_seq_pair`):

  single:  [CLS] a [SEP]            segment 0 throughout,        a cut to T - 2 tokens
  pair:    [CLS] a [SEP] b [SEP]    segment 0, then 1 for b [SEP], a + b cut to T - 3 tokens

`_truncate_seq_pair` drops the last token of the longer list until the pair fits, from b on a
tie. Its result has a closed form (derived in `truncate_seq_pair`), computed here with basic
TF ops, so a SavedModel built on it needs no tensorflow-text op beyond the tokenizer's
(NormalizeUTF8, RegexSplitWithOffsets, WordpieceTokenizeWithOffsets): not RoundRobinTrimmer
or ShrinkLongestTrimmer, whose ops are missing from released TF Serving builds.

As in the original, a pair whose second text has no tokens takes the single layout (and its
T - 2 budget), and after truncation the second [SEP] is written only if b kept a token
(which fails to happen only when T <= 4).
"""

import tensorflow as tf

from convbert_tf.data.tokenization import CLS_TOKEN, PAD_TOKEN, SEP_TOKEN

MODEL_INPUT_KEYS = ("input_ids", "input_mask", "segment_ids")


def truncate_seq_pair(first_lengths, second_lengths, max_tokens):
    """Lengths each text keeps under `_truncate_seq_pair`'s longest-first rule.

    The loop "while a + b > m: drop from a if a > b else from b" ends with
      b' = min(b, max(floor(m / 2), m - a)),   a' = min(a, m - b'):
    the longer text is cut down to the shorter one's length and then both alternately, which
    leaves a' = ceil(m / 2), b' = floor(m / 2) unless one text is short enough to stay whole
    (a <= floor(m / 2) keeps a and gives b the rest, and symmetrically). With b = 0 this is
    the single-text rule a' = min(a, m).

    Args:
      first_lengths, second_lengths: int32 [B], token counts of each text.
      max_tokens: int32 scalar or [B], m, the tokens the two texts may keep together (>= 0).

    Returns:
      (first_kept, second_kept), int32 [B] each.
    """
    max_tokens = tf.convert_to_tensor(max_tokens, tf.int32)
    second_kept = tf.minimum(
        second_lengths, tf.maximum(max_tokens // 2, max_tokens - first_lengths))  # [B]
    first_kept = tf.minimum(first_lengths, max_tokens - second_kept)  # [B]
    return first_kept, second_kept


def keep_first(ragged, lengths):
    """The first lengths[i] tokens of row i of a ragged [B, (N)] tensor."""
    positions = tf.ragged.range(ragged.row_lengths())  # [B, (N)]
    lengths = tf.cast(lengths, positions.dtype)
    return tf.ragged.boolean_mask(ragged, positions < tf.expand_dims(lengths, 1))  # [B, (N')]


def special_token_id(tokenizer, token):
    """The id of a special token, looked up in the tokenizer's vocab table (int32 scalar)."""
    return tf.cast(tokenizer.vocab_table.lookup(tf.constant(token)), tf.int32)


def pack_token_ids(first_ids, second_ids, max_seq_length, cls_id, sep_id, pad_id):
    """Truncates, adds [CLS]/[SEP] and pads already-tokenized texts into encoder inputs.

    Args:
      first_ids: int32 ragged [B, (A)], WordPiece ids of the first texts (no specials).
      second_ids: int32 ragged [B, (Bt)] of the second texts, or None for single texts.
      max_seq_length: T, a Python int (>= 2 for single texts, >= 3 for pairs).
      cls_id, sep_id, pad_id: ids of [CLS], [SEP] and [PAD] (int or int32 scalar tensor).

    Returns:
      (inputs, num_truncated): `inputs` a dict of int32 [B, T] tensors `input_ids`,
      `input_mask` (1 = real token, 0 = padding) and `segment_ids` (0 for [CLS] a [SEP],
      1 for b [SEP], 0 on padding); `num_truncated` int32 [B], the tokens of a and b dropped.
    """
    minimum = 2 if second_ids is None else 3
    if int(max_seq_length) < minimum:
        raise ValueError(f"max_seq_length must be at least {minimum} for "
                         f"{'single texts' if second_ids is None else 'text pairs'} "
                         f"([CLS] and [SEP]s), got {max_seq_length}")
    max_seq_length = int(max_seq_length)
    first_ids = first_ids.with_row_splits_dtype(tf.int64)
    first_lengths = tf.cast(first_ids.row_lengths(), tf.int32)  # [B]
    if second_ids is None:
        second_ids = tf.RaggedTensor.from_row_lengths(
            tf.zeros([0], first_ids.dtype), tf.zeros_like(first_ids.row_lengths()))  # [B, (0)]
    second_ids = tf.cast(second_ids, first_ids.dtype).with_row_splits_dtype(tf.int64)
    second_lengths = tf.cast(second_ids.row_lengths(), tf.int32)  # [B]
    is_pair = second_lengths > 0  # [B]
    max_tokens = max_seq_length - 2 - tf.cast(is_pair, tf.int32)  # [B]
    first_kept, second_kept = truncate_seq_pair(first_lengths, second_lengths, max_tokens)  # [B] each
    first_ids = keep_first(first_ids, first_kept)  # [B, (A')]
    second_ids = keep_first(second_ids, second_kept)  # [B, (Bt')]
    num_truncated = first_lengths + second_lengths - first_kept - second_kept  # [B]

    batch_size = tf.shape(first_lengths, out_type=tf.int64)[0]
    cls_id = tf.cast(cls_id, first_ids.dtype)
    sep_id = tf.cast(sep_id, first_ids.dtype)
    one_per_row = tf.ones([batch_size], tf.int64)
    cls_column = tf.RaggedTensor.from_row_lengths(tf.fill([batch_size], cls_id), one_per_row)  # [B, (1)]
    sep_column = tf.RaggedTensor.from_row_lengths(tf.fill([batch_size], sep_id), one_per_row)  # [B, (1)]
    # The second [SEP] only where b kept a token (the original's `if tokens_b:`).
    second_sep = keep_first(sep_column, tf.minimum(second_kept, 1))  # [B, (0 or 1)]

    input_ids = tf.concat([cls_column, first_ids, sep_column, second_ids, second_sep], axis=1)  # [B, (L)]
    segment_ids = tf.concat([
        tf.zeros_like(cls_column), tf.zeros_like(first_ids), tf.zeros_like(sep_column),
        tf.ones_like(second_ids), tf.ones_like(second_sep)], axis=1)  # [B, (L)]
    shape = [None, max_seq_length]
    inputs = {
        "input_ids": tf.cast(input_ids.to_tensor(tf.cast(pad_id, input_ids.dtype), shape=shape),
                             tf.int32),  # [B, T]
        "input_mask": tf.cast(tf.ones_like(input_ids).to_tensor(0, shape=shape), tf.int32),  # [B, T]
        "segment_ids": tf.cast(segment_ids.to_tensor(0, shape=shape), tf.int32),  # [B, T]
    }
    return inputs, num_truncated


def pack_text_inputs(tokenizer, texts, text_pairs=None, max_seq_length=128):
    """Tokenizes raw text and packs it into encoder inputs, in graph mode (tf.data, SavedModels).

    Args:
      tokenizer: a `WordPieceTokenizerModule` (strings [B] -> ragged int32 ids [B, (A)]); the
        [CLS], [SEP] and [PAD] ids are looked up in its vocab table.
      texts: tf.string [B], the first (or only) texts.
      text_pairs: tf.string [B], the second texts, or None for single-text inputs. An empty
        second text gives the single-text layout for that example, as in the original.
      max_seq_length: T, a Python int.

    Returns:
      (inputs, num_truncated) as for `pack_token_ids`: int32 [B, T] `input_ids`,
      `input_mask`, `segment_ids`, and int32 [B] tokens dropped by truncation.
    """
    first_ids = tokenizer(texts)  # [B, (A)]
    second_ids = None if text_pairs is None else tokenizer(text_pairs)  # [B, (Bt)]
    return pack_token_ids(
        first_ids, second_ids, max_seq_length,
        cls_id=special_token_id(tokenizer, CLS_TOKEN),
        sep_id=special_token_id(tokenizer, SEP_TOKEN),
        pad_id=special_token_id(tokenizer, PAD_TOKEN))
