"""Learning a WordPiece vocabulary from text, and writing vocab files atomically."""
import os
from typing import Iterable, Iterator, Sequence, Union

import tensorflow as tf
from tensorflow_text.tools.wordpiece_vocab import bert_vocab_from_dataset

from convbert_tf import io
from convbert_tf.data import tokenization

_BATCH_LINES = 1024


def _iter_lines(texts_or_files: Iterable[Union[str, os.PathLike]]) -> Iterator[str]:
    for item in texts_or_files:
        if isinstance(item, os.PathLike):
            with open(item, encoding="utf-8") as f:
                yield from f
        elif isinstance(item, str):
            yield item
        else:
            raise TypeError(
                f"learn_wordpiece_vocab takes str texts or os.PathLike files, got {type(item).__name__}"
            )


def learn_wordpiece_vocab(
    texts_or_files: Iterable[Union[str, os.PathLike]],
    vocab_size: int,
    do_lower_case: bool = True,
    strip_accents: bool = True,
) -> list[str]:
    """Learns a WordPiece vocab whose words are split exactly as `BertTokenizer` splits them.

    Words come from `tokenization.split_words` (the BERT rules this project's tokenizer uses), and
    the subword learning is tensorflow-text's `bert_vocab_from_dataset`. Its own pre-split
    (`lower_case=False`, no normalization) finds nothing more to split in those words; its
    `lower_case=True` is not used because it case-folds with NFKC, which our tokenizer does not.

    Args:
      texts_or_files: each item is either a `str` of text (one or more lines) or an
        `os.PathLike` (e.g. `pathlib.Path`) naming a UTF-8 text file to read whole. A plain `str`
        is always text, never a path.
      vocab_size: the vocab size wanted. The learner aims at or just below it, but always keeps
        the specials and every kept character with its "##" form (up to 1,000 characters), so a
        small corpus can give fewer tokens and a tiny `vocab_size` more.
      do_lower_case, strip_accents: must match the tokenizer that will use the vocab.

    Returns:
      The tokens, id = position: [PAD], [UNK], [CLS], [SEP], [MASK] first ([PAD] = 0), then the
      single characters and their "##" forms, then the learned pieces.
    """
    reserved = list(tokenization.SPECIAL_TOKENS)
    if vocab_size <= len(reserved):
        raise ValueError(f"vocab_size must exceed the {len(reserved)} special tokens, got {vocab_size}")

    dataset = tf.data.Dataset.from_generator(
        lambda: _iter_lines(texts_or_files), output_signature=tf.TensorSpec([], tf.string)
    ).batch(_BATCH_LINES)  # [b] per element
    words = dataset.map(
        lambda texts: tokenization.split_words(texts, do_lower_case, strip_accents)
    )  # [b, (W)] per element
    tokens = bert_vocab_from_dataset.bert_vocab_from_dataset(
        words,
        vocab_size=vocab_size,
        reserved_tokens=reserved,
        bert_tokenizer_params={"lower_case": False},
        learn_params={"lower_thresh": 1},
    )
    if tokens[: len(reserved)] != reserved:
        raise AssertionError(f"the learner did not put the special tokens first: {tokens[:5]}")
    return tokens


def write_vocab(path: Union[str, os.PathLike], tokens: Sequence[str]) -> None:
    """Writes one token per line to `path` atomically (`convbert_tf.io`)."""
    for index, token in enumerate(tokens):
        if not token or token != token.strip() or "\n" in token:
            raise ValueError(f"token {index} ({token!r}) cannot be written as a vocab line")
    tokenization.check_special_tokens(tokens)
    io.atomic_write_text(path, "".join(token + "\n" for token in tokens))
