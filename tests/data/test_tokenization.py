"""The tensorflow-text tokenizer gives the ids of BERT's rules (tests/bert_reference_tokenizer.py)."""

import pytest
import tensorflow as tf
import tensorflow_text as tf_text
from hypothesis import given, settings
from hypothesis import strategies as st

from bert_reference_tokenizer import ReferenceTokenizer
from convbert_tf.data import tokenization
from convbert_tf.data.tokenization import BertTokenizer, VocabError

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
# Characters that get a vocab entry (alone and as "##c"); anything else is an unknown character.
KNOWN_CHARS = (
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"
    "éèçöüßıσςαβγδοжиÉÖ²ﬁ¿«»—…“„、。東京日本中文字"
)
WORDS = ["hello", "world", "wörld", "cafe", "café", "zero", "##width", "the", "##s", "un", "##known",
         "жжж", "##жж", "straße"]
TRICKY_TEXTS = [
    "Hello, World! It's the test's end.",
    "Café naïve résumé ÉCOLE Wörld",
    "東京は日本の首都です。中文字符",
    "a" * 100,
    "a" * 101,
    "x" * 99 + "!",
    "ж" * 60,  # 120 bytes but 60 characters: not [UNK] under BERT's 100-character rule
    "ж" * 100,
    "ж" * 101,
    "emoji 😀 and 👨\u200d👩\u200d👧 family ❤\ufe0f ☃",
    "zero\u200bwidth ctrl\x00nul\x07bell repl\ufffdchar soft\u00adhyphen \ufeffbom",
    "tab\there\nnew\rline\x0bvt\x0cff\x1fus\x85nel",
    "nbsp\u00a0ideo\u3000space\u2028ls\u2029ps",
    "ﬁne ² straße ẞ İstanbul ΟΔΟΣ ΣΑΣ Ǆ Ⅻ",
    "MiXeD CaSe WoRlD hElLo",
    "under_score hy-phen [brackets] {curly} `tick` ~tilde @at #hash $dollar ^caret |pipe",
    "«guillemets» „quotes“ — dash … ellipsis ¿qué?",
    "=\u0338 e\u0301 Wo\u0308rld \u1fef \u0300start",
    "unknown unknowns ☃☃ q☃q",
    "",
    "   ",
]
MODES = [(True, True), (True, False), (False, False)]  # (do_lower_case, strip_accents)


def vocab_tokens():
    tokens = SPECIALS + WORDS
    for char in KNOWN_CHARS:
        tokens += [char, "##" + char]
    return list(dict.fromkeys(tokens))


@pytest.fixture(scope="module")
def vocab_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("vocab") / "vocab.txt"
    path.write_text("\n".join(vocab_tokens()) + "\n", encoding="utf-8")
    return path


_TOKENIZERS = {}


def tokenizer_for(vocab_file, mode):
    if mode not in _TOKENIZERS:
        _TOKENIZERS[mode] = BertTokenizer.from_vocab_file(vocab_file, *mode)
    return _TOKENIZERS[mode]


@pytest.mark.parametrize("mode", MODES, ids=["lower_strip", "lower_keep_accents", "cased"])
def test_ids_match_bert_rules_on_tricky_text(vocab_file, mode):
    tokenizer = tokenizer_for(vocab_file, mode)
    reference = ReferenceTokenizer(vocab_tokens(), *mode)
    got = tokenizer.tokenize(TRICKY_TEXTS)
    for text, ids in zip(TRICKY_TEXTS, got):
        assert tokenizer.ids_to_tokens(ids) == reference.pieces(text), repr(text)


def test_explicit_pieces_lower_and_strip(vocab_file):
    tokenizer = tokenizer_for(vocab_file, (True, True))

    def pieces(text):
        return tokenizer.ids_to_tokens(tokenizer.tokenize([text])[0])

    assert pieces("Hello, WÖRLD!") == ["hello", ",", "world", "!"]
    assert pieces("CAFÉ") == ["cafe"]
    assert pieces("zero\u200bwidth") == ["zero", "##width"]  # Cf dropped, not a space
    assert pieces("东京") == ["[UNK]", "京"]  # each CJK ideograph is a word; 东 is unknown
    assert pieces("a" * 100) == ["a"] + ["##a"] * 99
    assert pieces("a" * 101) == ["[UNK]"]
    assert pieces("ж" * 60) == ["жжж"] + ["##жж"] * 28 + ["##ж"]
    assert pieces("q☃q unknowns") == ["[UNK]", "un", "##known", "##s"]
    assert pieces("ﬁ²") == ["ﬁ", "##²"]  # no NFKC folding
    assert pieces("a\x00b\ufffdc") == ["a", "##b", "##c"]


def test_lower_case_without_accent_stripping(vocab_file):
    tokenizer = tokenizer_for(vocab_file, (True, False))

    def pieces(text):
        return tokenizer.ids_to_tokens(tokenizer.tokenize([text])[0])

    assert pieces("Wörld CAFÉ") == ["wörld", "café"]
    assert pieces("Wo\u0308rld") == ["wörld"]  # decomposed input composes to the same ids
    assert pieces("STRASSE Straße") == ["s", "##t", "##r", "##a", "##s", "##s", "##e", "straße"]


# Hypothesis: random strings over a pool of the characters that stress each rule.
_POOL = list(
    "aAbBzZ09 .,!?'-_`~[](){}éÉöüçßı東京日本字😀☃ΣσςİǄﬁ²жИ"
    "\t\n\r\x00\x07\x0b\x1f\x7f\x85\u00a0\u3000\u2028\u200b\u200d\ufeff\u00ad\ufffd\ufe0f"
    "\u0301\u0308\u0338\u1fef“„«»—…¿、。"
)


@settings(max_examples=60, deadline=None, derandomize=True, database=None)
@given(st.lists(st.text(alphabet=st.sampled_from(_POOL), max_size=40), min_size=1, max_size=8))
def test_random_text_matches_bert_rules(vocab_file, texts):
    for mode in MODES:
        reference = ReferenceTokenizer(vocab_tokens(), *mode)
        got = tokenizer_for(vocab_file, mode).tokenize(texts)
        assert got == [reference.ids(text) for text in texts], (mode, texts)


@pytest.mark.parametrize("which", ["FastBertTokenizer", "BertTokenizer"])
def test_stock_tf_text_tokenizers_still_break_bert_rules(vocab_file, which):
    # Why tokenization.py spells out the normalization itself: tf-text's own tokenizers
    # case-fold with NFKC and turn control characters into spaces. If this starts failing,
    # tf-text now agrees and the simpler stock tokenizer could be used.
    if which == "FastBertTokenizer":
        stock = tf_text.FastBertTokenizer(vocab=vocab_tokens(), lower_case_nfd_strip_accents=True)
        ids = stock.tokenize(TRICKY_TEXTS).to_list()
    else:
        stock = tf_text.BertTokenizer(str(vocab_file), lower_case=True)
        ids = stock.tokenize(TRICKY_TEXTS).merge_dims(1, 2).to_list()
    reference = ReferenceTokenizer(vocab_tokens(), True, True)
    mismatches = [t for t, i in zip(TRICKY_TEXTS, ids) if i != reference.ids(t)]
    assert len(mismatches) >= 3


def test_graph_function_and_saved_model_give_the_same_ids(vocab_file, tmp_path):
    tokenizer = tokenizer_for(vocab_file, (True, True))
    eager = tokenizer.tokenize(TRICKY_TEXTS)
    module = tokenizer.module
    graph = module(tf.constant(TRICKY_TEXTS))  # [B, (T)] int32
    assert graph.dtype == tf.int32
    assert graph.to_list() == eager

    tf.saved_model.save(module, str(tmp_path / "tokenizer"))
    restored = tf.saved_model.load(str(tmp_path / "tokenizer"))
    assert restored(tf.constant(TRICKY_TEXTS)).to_list() == eager


def test_graph_uses_only_tf_text_ops_that_tf_serving_ships(vocab_file):
    module = tokenizer_for(vocab_file, (True, True)).module
    graph_def = module.__call__.get_concrete_function().graph.as_graph_def()
    op_types = {node.op for node in graph_def.node}
    for function in graph_def.library.function:
        op_types |= {node.op for node in function.node_def}
    non_core = {op for op in op_types if not hasattr(tf.raw_ops, op)}
    assert non_core == {"NormalizeUTF8", "RegexSplitWithOffsets", "WordpieceTokenizeWithOffsets"}


def test_special_token_ids(vocab_file):
    ids = tokenizer_for(vocab_file, (True, True)).special_token_ids
    assert (ids.pad, ids.unk, ids.cls, ids.sep, ids.mask) == (0, 1, 2, 3, 4)
    shuffled = ["a", "[MASK]", "[SEP]", "b", "[CLS]", "[UNK]", "[PAD]"]
    ids = BertTokenizer(shuffled).special_token_ids
    assert (ids.pad, ids.unk, ids.cls, ids.sep, ids.mask) == (6, 5, 4, 2, 1)


def test_vocab_missing_specials_is_an_error_naming_file_and_tokens(tmp_path):
    path = tmp_path / "bad_vocab.txt"
    path.write_text("[PAD]\n[UNK]\n[CLS]\nhello\n", encoding="utf-8")
    with pytest.raises(VocabError) as error:
        BertTokenizer.from_vocab_file(path)
    assert str(path) in str(error.value)
    assert "[SEP], [MASK]" in str(error.value)


@pytest.mark.parametrize(
    "content, message",
    [
        (
            "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nhello\nhello\n",
            r"bad\.txt:7: duplicate token 'hello' \(also on line 6\)",
        ),
        ("[PAD]\n[UNK]\n\n[CLS]\n[SEP]\n[MASK]\n", r"bad\.txt:3: empty line"),
    ],
)
def test_malformed_vocab_errors_name_the_line(tmp_path, content, message):
    path = tmp_path / "bad.txt"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(VocabError, match=message):
        tokenization.read_vocab(path)


def test_missing_vocab_file(tmp_path):
    with pytest.raises(VocabError, match="does not exist"):
        tokenization.read_vocab(tmp_path / "nope.txt")
