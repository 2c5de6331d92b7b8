"""convbert_tf.data.vocab: a WordPiece vocab learned from a corpus, and written atomically."""

import pathlib

import pytest
import tensorflow as tf

from convbert_tf.data import tokenization
from convbert_tf.data import vocab as vocab_lib
from convbert_tf.data.tokenization import BertTokenizer

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]

CORPUS = [
    "The quick brown fox jumps over the lazy dog.",
    "Café au lait, s'il vous plaît! The fox likes café.",
    "東京 is the capital of 日本.",
] * 20


def test_learned_vocab_reserves_specials_and_covers_the_corpus(tmp_path):
    tokens = vocab_lib.learn_wordpiece_vocab(CORPUS, vocab_size=120)
    assert tokens[:5] == SPECIALS
    assert len(set(tokens)) == len(tokens)
    assert {"the", "fox", "cafe"} <= set(tokens)  # frequent words are whole tokens
    tokenizer = BertTokenizer(tokens)
    assert all(tokenizer.special_token_ids.unk not in ids for ids in tokenizer.tokenize(CORPUS))

    corpus_file = tmp_path / "corpus.txt"
    corpus_file.write_text("\n".join(CORPUS) + "\n", encoding="utf-8")
    assert vocab_lib.learn_wordpiece_vocab([corpus_file], vocab_size=120) == tokens

    path = tmp_path / "out" / "vocab.txt"
    vocab_lib.write_vocab(path, tokens)
    assert tokenization.read_vocab(path) == tokens
    assert [p.name for p in path.parent.iterdir()] == ["vocab.txt"]  # no temp file left


def test_learned_vocab_keeps_accents_when_asked():
    tokens = vocab_lib.learn_wordpiece_vocab(CORPUS, vocab_size=120, do_lower_case=True, strip_accents=False)
    assert "café" in tokens and "cafe" not in tokens


def test_write_vocab_refuses_unwritable_tokens(tmp_path):
    with pytest.raises(ValueError, match="cannot be written"):
        vocab_lib.write_vocab(tmp_path / "v.txt", SPECIALS + ["two\nlines"])
    assert not pathlib.Path(tmp_path / "v.txt").exists()


def test_write_vocab_goes_through_gfile_for_remote_paths():
    path = "ram://convbert-vocab-test/data/vocab.txt"
    vocab_lib.write_vocab(path, SPECIALS + ["the"])
    with tf.io.gfile.GFile(path) as f:
        assert f.read() == "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nthe\n"
    assert tf.io.gfile.listdir("ram://convbert-vocab-test/data") == ["vocab.txt"]
