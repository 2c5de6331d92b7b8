"""BERT basic + WordPiece tokenization on tensorflow-text ops, with the ids BERT's rules give.

Legend: B strings in a batch, W words per string (ragged), P pieces per word (ragged),
T pieces per string (ragged, = Σ P over the string's words).

The rules (BERT's `BasicTokenizer` then `WordpieceTokenizer`, as the original release uses them):

1. Clean: tab, newline, carriage return and Unicode separators (Z*) become " "; NUL, U+FFFD and
   other control/format characters (Cc, Cf) are dropped (not replaced by a space).
2. Case and accents:
   * `do_lower_case` and `strip_accents` (BERT uncased, the release default): lower-case, NFD,
     drop nonspacing marks (Mn).
   * `do_lower_case` without `strip_accents` (the original's `--no-strip-accents`): NFC, then
     lower-case. The original only lower-cased; composing to NFC first is this project's
     addition so that composed and decomposed spellings of a word get the same ids.
   * no `do_lower_case`: NFC only. `strip_accents` applies only with lower-casing, as in the
     original.
3. Words: split at spaces; every punctuation character (ASCII 33-47, 58-64, 91-96, 123-126 and
   Unicode P*) and every CJK ideograph is a word of its own.
4. WordPiece: a word of more than 100 characters is [UNK]; otherwise greedy longest-match-first
   with "##" continuation pieces, and [UNK] for the whole word if some part matches nothing.

Why not `tensorflow_text.FastBertTokenizer` or `tensorflow_text.BertTokenizer` as they stand:
both lower-case with ICU NFKC case folding ("ﬁ" → "fi", "²" → "2", "ß" → "ss", "…" → "..."),
replace control characters by a space instead of dropping them ("zero\u200bwidth" becomes two
words), keep U+FFFD, and limit words to 100 *bytes* rather than 100 characters; BertTokenizer
also splits only at ASCII whitespace. Each of these changes ids relative to BERT's rules (the
tests show them). So steps 1-3 are spelled out below with core TF string ops plus
tensorflow-text's `normalize_utf8` and `regex_split`, and step 4 is tensorflow-text's
`WordpieceTokenizer`. The graph uses only the tensorflow-text ops NormalizeUTF8,
RegexSplitWithOffsets and WordpieceTokenizeWithOffsets, which stock TF Serving ships.
"""
import dataclasses
import os
from typing import Sequence

import tensorflow as tf
import tensorflow_text as tf_text

PAD_TOKEN = "[PAD]"
UNK_TOKEN = "[UNK]"
CLS_TOKEN = "[CLS]"
SEP_TOKEN = "[SEP]"
MASK_TOKEN = "[MASK]"
SPECIAL_TOKENS = (PAD_TOKEN, UNK_TOKEN, CLS_TOKEN, SEP_TOKEN, MASK_TOKEN)

SUFFIX_INDICATOR = "##"
MAX_CHARS_PER_WORD = 100
# tensorflow-text limits words in bytes; a character is at most 4 UTF-8 bytes, so this byte
# limit never triggers before the 100-character rule, which is applied separately.
_MAX_BYTES_PER_WORD = 4 * MAX_CHARS_PER_WORD

# RE2 patterns. After cleaning, " " is the only whitespace left.
_WHITESPACE = r"[\t\n\r\p{Z}]"
_DROPPED = r"[\p{Cc}\p{Cf}\x{FFFD}]"
_PUNCTUATION = r"[!-/:-@\[-`{-~\p{P}]"
_CJK = (
    r"[\x{4E00}-\x{9FFF}\x{3400}-\x{4DBF}\x{20000}-\x{2A6DF}\x{2A700}-\x{2B73F}"
    r"\x{2B740}-\x{2B81F}\x{2B820}-\x{2CEAF}\x{F900}-\x{FAFF}\x{2F800}-\x{2FA1F}]"
)
_WORD_DELIMITERS = f" +|{_PUNCTUATION}|{_CJK}"
_KEPT_DELIMITERS = f"{_PUNCTUATION}|{_CJK}"

_TOKENIZE_BATCH = 512


class VocabError(ValueError):
    """A vocab file (or token list) that cannot be used: missing, malformed, or lacking specials."""


@dataclasses.dataclass(frozen=True)
class SpecialTokenIds:
    """Ids of the five special tokens every vocab must contain."""

    pad: int
    unk: int
    cls: int
    sep: int
    mask: int


def read_vocab(vocab_file) -> list[str]:
    """Reads a vocab file (one token per line, id = line number - 1) and validates it.

    Raises:
      VocabError: the file is missing or unreadable, not UTF-8, has an empty or duplicate line,
        or lacks one of [PAD], [UNK], [CLS], [SEP], [MASK]. The message names the file (and the
        line, or the missing tokens).
    """
    path = os.fspath(vocab_file)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise VocabError(f"vocab file {path} does not exist") from None
    except OSError as e:
        raise VocabError(f"cannot read vocab file {path}: {e.strerror}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise VocabError(f"{path}:{line}: vocab file is not valid UTF-8") from None
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    first_line = {}
    tokens = []
    for number, line in enumerate(lines, start=1):
        token = line.strip()
        if not token:
            raise VocabError(f"{path}:{number}: empty line; a vocab file holds one token per line")
        if token in first_line:
            raise VocabError(
                f"{path}:{number}: duplicate token {token!r} (also on line {first_line[token]})"
            )
        first_line[token] = number
        tokens.append(token)
    check_special_tokens(tokens, source=f"vocab file {path}")
    return tokens


def check_special_tokens(tokens: Sequence[str], source: str = "the token list") -> None:
    """Raises VocabError naming `source` and the missing tokens if any special token is absent."""
    present = set(tokens)
    missing = [token for token in SPECIAL_TOKENS if token not in present]
    if missing:
        raise VocabError(
            f"{source} lacks the special token(s) {', '.join(missing)}; every vocab needs "
            f"{', '.join(SPECIAL_TOKENS)} (one per line). Add them, or learn a vocab from the "
            "corpus with build_pretraining_dataset.py --vocab_size"
        )


def split_words(texts, do_lower_case=True, strip_accents=True):
    """Rules 1-3 as TF ops: UTF-8 strings [B] to normalized words, a ragged string tensor [B, (W)].

    Args:
      texts: string tensor [B].
      do_lower_case, strip_accents: as for `BertTokenizer`.
    """
    texts = tf.strings.regex_replace(texts, _WHITESPACE, " ")  # [B]
    texts = tf.strings.regex_replace(texts, _DROPPED, "")  # [B]
    if do_lower_case and strip_accents:
        texts = tf.strings.lower(texts, encoding="utf-8")
        texts = tf_text.normalize_utf8(texts, "NFD")
        texts = tf.strings.regex_replace(texts, r"\p{Mn}", "")  # [B]
    else:
        texts = tf_text.normalize_utf8(texts, "NFC")  # [B]
        if do_lower_case:
            texts = tf.strings.lower(texts, encoding="utf-8")
    return tf_text.regex_split(texts, _WORD_DELIMITERS, _KEPT_DELIMITERS)  # [B, (W)]


class WordPieceTokenizerModule(tf.Module):
    """Graph-mode BERT tokenization: a string tensor [B] to ragged ids [B, (T)].

    Embeddable in a SavedModel: the vocab is baked in as a constant lookup table, and `__call__`
    and `split_words` are `tf.function`s with fixed input signatures.

    Args:
      tokens: the vocab, id = position. Must contain the special tokens.
      do_lower_case: lower-case the text (see the module docstring for the exact rules).
      strip_accents: with `do_lower_case`, decompose and drop accents; ignored without it.
      name: module name.
    """

    def __init__(self, tokens: Sequence[str], do_lower_case=True, strip_accents=True, name=None):
        super().__init__(name=name)
        check_special_tokens(tokens)
        self.do_lower_case = bool(do_lower_case)
        self.strip_accents = bool(strip_accents)
        self.vocab_table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(
                tf.constant(list(tokens), dtype=tf.string),
                tf.range(len(tokens), dtype=tf.int64),
            ),
            default_value=-1,
        )
        self.wordpiece = tf_text.WordpieceTokenizer(
            self.vocab_table,
            suffix_indicator=SUFFIX_INDICATOR,
            max_bytes_per_word=_MAX_BYTES_PER_WORD,
            token_out_type=tf.int32,
            unknown_token=UNK_TOKEN,
            split_unknown_characters=False,
        )

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="texts")])
    def split_words(self, texts):
        """Rules 1-3: UTF-8 strings [B] to normalized words, a ragged string tensor [B, (W)]."""
        return split_words(texts, self.do_lower_case, self.strip_accents)  # [B, (W)]

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="texts")])
    def __call__(self, texts):
        """UTF-8 strings [B] to WordPiece ids, a ragged int32 tensor [B, (T)] (no [CLS]/[SEP])."""
        words = self.split_words(texts)  # [B, (W)]
        too_long = tf.strings.length(words.flat_values, unit="UTF8_CHAR") > MAX_CHARS_PER_WORD
        # A word replaced by the literal "[UNK]" WordPieces to exactly the [UNK] id; no real word
        # can equal it because "[" always splits off as punctuation.
        words = words.with_flat_values(tf.where(too_long, UNK_TOKEN, words.flat_values))
        pieces = self.wordpiece.tokenize(words)  # [B, (W), (P)]
        return pieces.merge_dims(1, 2)  # [B, (T)]


class BertTokenizer:
    """Eager BERT tokenizer over `WordPieceTokenizerModule`, for building data in Python.

    Args:
      tokens: the vocab, id = position; must contain [PAD], [UNK], [CLS], [SEP], [MASK].
      do_lower_case: lower-case the text (default True, as the original release).
      strip_accents: with `do_lower_case`, strip accents (default True; False is the original's
        `--no-strip-accents`).
      vocab_file: where `tokens` came from, used in error messages only.

    Attributes:
      tokens: the vocab as a tuple. vocab: token → id. special_token_ids: `SpecialTokenIds`.
      module: the graph-mode `WordPieceTokenizerModule`, to embed in a SavedModel.
    """

    def __init__(self, tokens: Sequence[str], do_lower_case=True, strip_accents=True, vocab_file=None):
        source = f"vocab file {os.fspath(vocab_file)}" if vocab_file is not None else "the token list"
        check_special_tokens(tokens, source=source)
        self.tokens = tuple(tokens)
        self.vocab = {token: index for index, token in enumerate(self.tokens)}
        if len(self.vocab) != len(self.tokens):
            raise VocabError(f"{source} has duplicate tokens")
        self.do_lower_case = bool(do_lower_case)
        self.strip_accents = bool(strip_accents)
        self.vocab_file = vocab_file
        self.special_token_ids = SpecialTokenIds(
            pad=self.vocab[PAD_TOKEN],
            unk=self.vocab[UNK_TOKEN],
            cls=self.vocab[CLS_TOKEN],
            sep=self.vocab[SEP_TOKEN],
            mask=self.vocab[MASK_TOKEN],
        )
        self.module = WordPieceTokenizerModule(self.tokens, self.do_lower_case, self.strip_accents)

    @classmethod
    def from_vocab_file(cls, vocab_file, do_lower_case=True, strip_accents=True) -> "BertTokenizer":
        """Reads and validates `vocab_file` (see `read_vocab`) and builds the tokenizer."""
        return cls(read_vocab(vocab_file), do_lower_case, strip_accents, vocab_file=vocab_file)

    @property
    def vocab_size(self) -> int:
        return len(self.tokens)

    def tokenize(self, texts: Sequence[str]) -> list[list[int]]:
        """Tokenizes each text to WordPiece ids (no [CLS]/[SEP]); texts are Python strings."""
        if isinstance(texts, str):
            raise TypeError("tokenize takes a list of strings, not one string")
        ids = []
        for start in range(0, len(texts), _TOKENIZE_BATCH):
            batch = tf.constant(list(texts[start : start + _TOKENIZE_BATCH]), dtype=tf.string)
            ids.extend(self.module(batch).to_list())  # [b, (T)]
        return ids

    def split_words(self, texts: Sequence[str]) -> list[list[str]]:
        """Rules 1-3 only: each text as its list of normalized words (what WordPiece sees)."""
        if isinstance(texts, str):
            raise TypeError("split_words takes a list of strings, not one string")
        words = []
        for start in range(0, len(texts), _TOKENIZE_BATCH):
            batch = tf.constant(list(texts[start : start + _TOKENIZE_BATCH]), dtype=tf.string)
            for row in self.module.split_words(batch).to_list():  # [b, (W)]
                words.append([word.decode("utf-8") for word in row])
        return words

    def ids_to_tokens(self, ids: Sequence[int]) -> list[str]:
        """Maps ids back to their vocab strings."""
        return [self.tokens[i] for i in ids]
