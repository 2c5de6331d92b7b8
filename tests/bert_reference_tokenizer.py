"""Plain-Python BERT basic + WordPiece tokenizer, written from the rules, used as the tests' oracle.

The rules (BERT's `BasicTokenizer` followed by `WordpieceTokenizer`):

1. Clean: drop NUL, U+FFFD and every control character (Unicode category Cc or Cf) except
   tab, newline and carriage return; turn those three and every space separator (Zs) into " ".
2. Put spaces around every CJK ideograph so each one becomes a word of its own.
3. Split on whitespace (Python's `str.split()`).
4. Per word: with lower-casing and accent stripping (BERT uncased), lower-case, decompose (NFD)
   and drop nonspacing marks (Mn). Otherwise compose to NFC (this project's addition; see
   `convbert_tf/data/tokenization.py`) and lower-case when lower-casing.
5. Split each word at punctuation: ASCII 33-47, 58-64, 91-96, 123-126 and Unicode P*; each
   punctuation character is a word of its own.
6. WordPiece each word: a word of more than 100 characters is [UNK]; otherwise greedy
   longest-match-first, continuation pieces prefixed "##"; if any position cannot be matched the
   whole word is [UNK].
"""
import unicodedata

MAX_CHARS_PER_WORD = 100

_CJK_RANGES = (
    (0x4E00, 0x9FFF),
    (0x3400, 0x4DBF),
    (0x20000, 0x2A6DF),
    (0x2A700, 0x2B73F),
    (0x2B740, 0x2B81F),
    (0x2B820, 0x2CEAF),
    (0xF900, 0xFAFF),
    (0x2F800, 0x2FA1F),
)
_ASCII_PUNCTUATION_RANGES = ((33, 47), (58, 64), (91, 96), (123, 126))


def is_cjk(char):
    code = ord(char)
    return any(low <= code <= high for low, high in _CJK_RANGES)


def is_punctuation(char):
    code = ord(char)
    if any(low <= code <= high for low, high in _ASCII_PUNCTUATION_RANGES):
        return True
    return unicodedata.category(char).startswith("P")


def is_whitespace(char):
    return char in " \t\n\r" or unicodedata.category(char) == "Zs"


def is_control(char):
    if char in "\t\n\r":
        return False
    return unicodedata.category(char) in ("Cc", "Cf")


def clean_text(text):
    out = []
    for char in text:
        if char == "\x00" or char == "\ufffd" or is_control(char):
            continue
        out.append(" " if is_whitespace(char) else char)
    return "".join(out)


def split_cjk(text):
    return "".join(f" {char} " if is_cjk(char) else char for char in text)


def strip_accents(word):
    return "".join(c for c in unicodedata.normalize("NFD", word) if unicodedata.category(c) != "Mn")


def split_punctuation(word):
    pieces, current = [], []
    for char in word:
        if is_punctuation(char):
            if current:
                pieces.append("".join(current))
                current = []
            pieces.append(char)
        else:
            current.append(char)
    if current:
        pieces.append("".join(current))
    return pieces


def basic_tokenize(text, do_lower_case=True, strip_accents_=True):
    words = []
    for word in split_cjk(clean_text(text)).split():
        if do_lower_case and strip_accents_:
            word = strip_accents(word.lower())
        elif do_lower_case:
            word = unicodedata.normalize("NFC", word).lower()
        else:
            word = unicodedata.normalize("NFC", word)
        words.extend(split_punctuation(word))
    return words


def wordpiece(word, vocab, unk="[UNK]"):
    if len(word) > MAX_CHARS_PER_WORD:
        return [unk]
    pieces, start = [], 0
    while start < len(word):
        end = len(word)
        match = None
        while start < end:
            candidate = word[start:end] if start == 0 else "##" + word[start:end]
            if candidate in vocab:
                match = candidate
                break
            end -= 1
        if match is None:
            return [unk]
        pieces.append(match)
        start = end
    return pieces


class ReferenceTokenizer:
    """BERT rules over a token list; `ids(text)` gives the ids the project tokenizer must match."""

    def __init__(self, tokens, do_lower_case=True, strip_accents=True):
        self.vocab = {token: index for index, token in enumerate(tokens)}
        self.do_lower_case = do_lower_case
        self.strip_accents = strip_accents

    def pieces(self, text):
        out = []
        for word in basic_tokenize(text, self.do_lower_case, self.strip_accents):
            out.extend(wordpiece(word, self.vocab))
        return out

    def ids(self, text):
        return [self.vocab[piece] for piece in self.pieces(text)]
