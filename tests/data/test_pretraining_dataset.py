"""build_pretraining_dataset.py end to end on a tiny corpus, plus the library's error paths."""
import os
import pathlib
import re
import subprocess
import sys
import tempfile

import pytest
import tensorflow as tf
from hypothesis import given, settings
from hypothesis import strategies as st

from bert_reference_tokenizer import ReferenceTokenizer
from repo_paths import ROOT
from convbert_tf.data.corpus_files import find_corpus_files
from convbert_tf.data.pretraining_dataset import DatasetBuildError, build_pretraining_dataset
from convbert_tf.data.tokenization import BertTokenizer

REPO = pathlib.Path(ROOT)
SCRIPT = REPO / "build_pretraining_dataset.py"
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
WORDS = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet", "cafe"]
T = 32


def vocab_tokens():
    tokens = SPECIALS + WORDS + ["."]
    for char in "abcdefghijklmnopqrstuvwxyz":
        tokens += [char, "##" + char]
    return tokens


def line(doc, number):
    """Six tokens: five capitalized-first words ("cafe" written "Café", to be normalized) and "."."""
    words = [WORDS[(doc * 7 + number * 3 + k) % len(WORDS)] for k in range(5)]
    written = ["Café" if w == "cafe" else w.capitalize() if k == 0 else w for k, w in enumerate(words)]
    return " ".join(written) + "."


def write_corpus(root: pathlib.Path):
    """Writes the corpus; returns its documents (as lists of lines) under blanks_separate_docs."""
    (root / "sub").mkdir(parents=True)
    docs = [[line(d, n) for n in range(4 + 3 * d)] for d in range(5)]
    # File a.txt holds documents 0-2 separated by blank lines; sub/b.txt holds 3 and 4.
    (root / "a.txt").write_text("\n\n".join("\n".join(doc) for doc in docs[:3]) + "\n", encoding="utf-8")
    (root / "sub" / "b.txt").write_text("\n".join(docs[3]) + "\n\n\n" + "\n".join(docs[4]), encoding="utf-8")
    (root / ".hidden.txt").write_text("zulu zulu zulu\n", encoding="utf-8")  # skipped: hidden
    return docs


def write_vocab(path: pathlib.Path):
    path.write_text("\n".join(vocab_tokens()) + "\n", encoding="utf-8")
    return path


def read_records(output_dir, num_files):
    spec = {name: tf.io.FixedLenFeature([T], tf.int64) for name in ("input_ids", "input_mask", "segment_ids")}
    examples = []
    for i in range(num_files):
        path = pathlib.Path(output_dir) / f"pretrain_data.tfrecord-{i}-of-{num_files}"
        for record in tf.data.TFRecordDataset(str(path)):
            parsed = tf.io.parse_single_example(record, spec)  # fails unless every feature has T values
            examples.append({k: v.numpy().tolist() for k, v in parsed.items()})
    return examples


def output_bytes(output_dir):
    return {p.name: p.read_bytes() for p in sorted(pathlib.Path(output_dir).glob("pretrain_data.tfrecord-*"))}


def run_script(*args):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, env=env, timeout=300, cwd=REPO
    )


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """One run of the script: corpus, vocab, output dir, and the completed process."""
    root = tmp_path_factory.mktemp("build")
    docs = write_corpus(root / "corpus")
    vocab = write_vocab(root / "vocab.txt")
    args = [
        f"--corpus_dir={root / 'corpus'}", f"--output_dir={root / 'out'}", f"--vocab_file={vocab}",
        f"--max_seq_length={T}", "--num_output_files=2", "--blanks_separate_docs", "--seed=3",
    ]
    result = run_script(*args)
    assert result.returncode == 0, result.stderr
    return root, docs, vocab, result


def test_script_writes_records_that_decode_back_to_the_corpus(built):
    root, docs, _, result = built
    tokens = vocab_tokens()
    cls, sep, pad = tokens.index("[CLS]"), tokens.index("[SEP]"), tokens.index("[PAD]")
    reference = ReferenceTokenizer(tokens)
    doc_pieces = [[p for text in doc for p in reference.pieces(text)] for doc in docs]
    assert "[UNK]" not in {p for doc in doc_pieces for p in doc}

    examples = read_records(root / "out", 2)
    assert len(examples) > len(docs)
    written = 0
    for example in examples:
        ids, mask, segments = example["input_ids"], example["input_mask"], example["segment_ids"]
        length = sum(mask)
        assert mask == [1] * length + [0] * (T - length) and ids[length:] == [pad] * (T - length)
        assert ids[0] == cls and ids[length - 1] == sep
        first_sep = ids.index(sep)
        assert segments == [0] * (first_sep + 1) + [1] * (length - first_sep - 1) + [0] * (T - length)
        body = [tokens[i] for i in ids[1:first_sep] + ids[first_sep + 1 : length - 1]]
        written += len(body)
        # Lines are all 6 tokens, so segment A is a run of whole lines and B the lines right after
        # it: A + B is a contiguous stretch of one document's tokens.
        joined = " " + " ".join(body) + " "
        assert any(joined in " " + " ".join(doc) + " " for doc in doc_pieces), body

    summary = dict(re.findall(r"^([a-z ]+):\s+(\d+)", result.stdout, flags=re.M))
    assert int(summary["files"]) == 2  # .hidden.txt is skipped
    assert int(summary["documents"]) == len(docs)
    assert int(summary["examples"]) == len(examples)
    assert int(summary["skipped lines"]) == 0
    # Every corpus token is either in an example or counted as truncated.
    assert written + int(summary["truncated tokens"]) == sum(len(doc) for doc in doc_pieces)


def test_library_run_reproduces_the_script_output_byte_for_byte(built, tmp_path):
    root, _, vocab, _ = built
    summary = build_pretraining_dataset(
        root / "corpus", tmp_path / "out", vocab, max_seq_length=T, num_output_files=2,
        blanks_separate_docs=True, seed=3,
    )
    assert output_bytes(tmp_path / "out") == output_bytes(root / "out")
    other_seed = tmp_path / "other"
    build_pretraining_dataset(
        root / "corpus", other_seed, vocab, max_seq_length=T, num_output_files=2,
        blanks_separate_docs=True, seed=4,
    )
    assert output_bytes(other_seed) != output_bytes(root / "out")
    assert summary.stats.documents == 5 and not summary.vocab_learned


def test_script_fails_cleanly_on_an_empty_corpus_dir(tmp_path):
    empty = tmp_path / "empty_corpus"
    empty.mkdir()
    result = run_script(f"--corpus_dir={empty}", f"--output_dir={tmp_path / 'out'}")
    assert result.returncode != 0
    assert f"corpus directory {empty} is empty" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()


def test_invalid_utf8_fails_naming_file_and_line_and_earlier_output_survives(tmp_path):
    corpus = tmp_path / "corpus"
    write_corpus(corpus)
    vocab = write_vocab(tmp_path / "vocab.txt")
    out = tmp_path / "out"
    build_pretraining_dataset(corpus, out, vocab, max_seq_length=T, num_output_files=3)
    (out / "notes.txt").write_text("mine\n")
    before = output_bytes(out)

    (corpus / "c.txt").write_bytes(b"alpha bravo.\ncharlie delta.\necho \xff golf.\nhotel.\n")
    with pytest.raises(DatasetBuildError, match=re.escape(f"{corpus / 'c.txt'}:3: invalid UTF-8")):
        build_pretraining_dataset(corpus, out, vocab, max_seq_length=T, num_output_files=2)
    assert output_bytes(out) == before
    assert sorted(p.name for p in out.iterdir()) == sorted([*before, "notes.txt"])  # no .tmp-* left

    summary = build_pretraining_dataset(
        corpus, out, vocab, max_seq_length=T, num_output_files=2, on_bad_utf8="skip"
    )
    assert summary.stats.skipped_lines == 1
    # The run with N = 2 replaced the N = 3 files and left the user's file alone.
    assert sorted(p.name for p in out.iterdir()) == [
        "notes.txt", "pretrain_data.tfrecord-0-of-2", "pretrain_data.tfrecord-1-of-2"
    ]
    assert summary.stats.files == 3 and summary.stats.documents == 3


def test_vocab_is_learned_from_the_corpus_when_missing(tmp_path):
    corpus = tmp_path / "corpus"
    write_corpus(corpus)
    out = tmp_path / "out"
    summary = build_pretraining_dataset(corpus, out, vocab_size=80, max_seq_length=T, num_output_files=1)
    vocab_file = out / "vocab.txt"
    assert summary.vocab_learned and summary.vocab_file == str(vocab_file)
    tokens = vocab_file.read_text(encoding="utf-8").split("\n")[:-1]
    assert tokens[:5] == SPECIALS and len(tokens) == summary.vocab_size
    examples = read_records(out, 1)
    assert examples and all(tokens.index("[UNK]") not in e["input_ids"] for e in examples)
    assert "cafe" in tokens and "zulu" not in tokens  # hidden files are not corpus

    # A second run reuses the vocab file rather than overwriting it.
    vocab_file.write_text(vocab_file.read_text(encoding="utf-8") + "extra\n", encoding="utf-8")
    again = build_pretraining_dataset(corpus, out, vocab_size=80, max_seq_length=T, num_output_files=1)
    assert not again.vocab_learned and again.vocab_size == len(tokens) + 1


def test_vocab_errors_name_the_vocab_file(tmp_path):
    corpus = tmp_path / "corpus"
    write_corpus(corpus)
    with pytest.raises(DatasetBuildError, match="does not exist; .*--vocab_size"):
        build_pretraining_dataset(corpus, tmp_path / "out", tmp_path / "missing.txt")
    bad = tmp_path / "bad_vocab.txt"
    bad.write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\nalpha\n", encoding="utf-8")
    message = f"vocab file {bad} lacks the special token(s) [MASK]"
    with pytest.raises(DatasetBuildError, match=re.escape(message)):
        build_pretraining_dataset(corpus, tmp_path / "out", bad)


def test_corpus_dir_errors(tmp_path):
    with pytest.raises(DatasetBuildError, match="does not exist"):
        find_corpus_files(tmp_path / "nowhere")
    only_hidden = tmp_path / "hidden_only"
    only_hidden.mkdir()
    (only_hidden / ".x.txt").write_text("a\n")
    with pytest.raises(DatasetBuildError, match=f"{only_hidden} holds no text files"):
        find_corpus_files(only_hidden)


def test_option_errors(tmp_path):
    corpus = tmp_path / "corpus"
    write_corpus(corpus)
    vocab = write_vocab(tmp_path / "vocab.txt")
    message = r"num_output_files \(1\) must be at least num_processes \(2\)"
    with pytest.raises(DatasetBuildError, match=message):
        build_pretraining_dataset(corpus, tmp_path / "out", vocab, num_processes=2, num_output_files=1)
    with pytest.raises(DatasetBuildError, match="on_bad_utf8"):
        build_pretraining_dataset(corpus, tmp_path / "out", vocab, on_bad_utf8="ignore")


@pytest.mark.slow
def test_parallel_build_is_deterministic(tmp_path):
    corpus = tmp_path / "corpus"
    write_corpus(corpus)
    (corpus / "c.txt").write_text("\n".join(line(9, n) for n in range(8)) + "\n", encoding="utf-8")
    vocab = write_vocab(tmp_path / "vocab.txt")
    runs = []
    for name in ("one", "two"):
        summary = build_pretraining_dataset(
            corpus, tmp_path / name, vocab, max_seq_length=T, num_processes=2, num_output_files=4, seed=5
        )
        runs.append(output_bytes(tmp_path / name))
    assert runs[0] == runs[1] and len(runs[0]) == 4
    assert summary.stats.files == 3 and summary.stats.examples == len(read_records(tmp_path / "one", 4))


@pytest.mark.slow
def test_script_reports_bad_utf8_without_traceback_and_can_skip(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "bad.txt").write_bytes(b"alpha bravo.\n\xc3\x28 charlie.\n")
    vocab = write_vocab(tmp_path / "vocab.txt")
    args = [f"--corpus_dir={corpus}", f"--output_dir={tmp_path / 'out'}", f"--vocab_file={vocab}",
            "--num_output_files=1", "--blanks_separate_docs=false"]
    failed = run_script(*args)
    assert failed.returncode == 1
    assert f"{corpus / 'bad.txt'}:2: invalid UTF-8" in failed.stderr and "Traceback" not in failed.stderr
    skipped = run_script(*args, "--on_bad_utf8=skip")
    assert skipped.returncode == 0, skipped.stderr
    assert re.search(r"^skipped lines:\s+1 ", skipped.stdout, flags=re.M)


# ----- fuzzing: hostile corpora never crash the builder, and every line is used or counted -----------
FUZZ_T = 16
FUZZ_VOCAB = vocab_tokens()
_fuzz_tokenizer = []


def fuzz_tokenizer():
    if not _fuzz_tokenizer:
        _fuzz_tokenizer.append(BertTokenizer(FUZZ_VOCAB))
    return _fuzz_tokenizer[0]


_TEXT_LINE = st.text(st.characters(blacklist_categories=("Cs",)), max_size=30).map(lambda s: s.encode("utf-8"))
_HOSTILE_LINE = st.one_of(
    _TEXT_LINE,  # any Unicode: control characters, NUL, \r, Unicode spaces and line separators
    st.binary(max_size=12),  # mostly invalid UTF-8
    st.sampled_from([b"", b"\r", b"\x00\x00", b"\xef\xbb\xbf", b"\xed\xa0\x80", b"\xc3", b" \t ", "Café.".encode()]),
    st.integers(50, 400).map(lambda n: b"alpha bravo " * n),  # far longer than an example
)
_FILE = st.tuples(st.lists(_HOSTILE_LINE, max_size=12), st.booleans())  # lines, trailing newline


def expected_counts(files, blanks_separate_docs):
    """What a correct build reports, from the bytes alone: invalid lines, documents, sentence tokens,
    and the "<file>:<line>" of every invalid line. Lines end at \\n and are stripped."""
    skipped, documents, sentences, invalid = 0, 0, [], set()
    for path, data in files:
        raw_lines = data.split(b"\n")
        if raw_lines[-1] == b"":
            raw_lines.pop()
        open_document = False
        for number, raw in enumerate(raw_lines, 1):
            try:
                text = raw.decode("utf-8").strip()
            except UnicodeDecodeError:
                skipped += 1
                invalid.add(f"{path}:{number}")
                continue
            if text:
                open_document = True
                sentences.append(text)
            elif blanks_separate_docs and open_document:
                documents, open_document = documents + 1, False
        documents += open_document
    tokens = sum(len(ids) for ids in fuzz_tokenizer().tokenize(sentences)) if sentences else 0
    return skipped, documents, tokens, invalid


@settings(max_examples=25, deadline=None, derandomize=True, database=None)
@given(files=st.lists(_FILE, min_size=1, max_size=3), blanks_separate_docs=st.booleans(),
       on_bad_utf8=st.sampled_from(["skip", "skip", "fail"]), seed=st.integers(0, 3))
def test_hostile_corpora_never_crash_and_every_line_is_used_or_counted(files, blanks_separate_docs, on_bad_utf8,
                                                                       seed):
    with tempfile.TemporaryDirectory() as root:
        root = pathlib.Path(root)
        (root / "corpus").mkdir()
        written = []
        for index, (lines, trailing_newline) in enumerate(files):
            path = root / "corpus" / f"part{index}.txt"
            data = b"\n".join(lines) + (b"\n" if trailing_newline else b"")
            path.write_bytes(data)
            written.append((str(path), data))
        vocab = write_vocab(root / "vocab.txt")
        skipped, documents, tokens, invalid = expected_counts(written, blanks_separate_docs)
        try:
            summary = build_pretraining_dataset(
                root / "corpus", root / "out", vocab, max_seq_length=FUZZ_T, num_output_files=2,
                blanks_separate_docs=blanks_separate_docs, seed=seed, on_bad_utf8=on_bad_utf8)
        except DatasetBuildError as e:  # the documented policy: fail naming the file and line
            assert on_bad_utf8 == "fail" and invalid, e
            location = re.match(r"(.*:\d+): invalid UTF-8", str(e)).group(1)
            assert location in invalid
            return
        assert not (on_bad_utf8 == "fail" and invalid)
        stats = summary.stats
        assert (stats.files, stats.skipped_lines, stats.documents) == (len(files), skipped, documents)
        assert stats.first_skipped_line in invalid if skipped else stats.first_skipped_line == ""

        spec = {k: tf.io.FixedLenFeature([FUZZ_T], tf.int64) for k in ("input_ids", "input_mask", "segment_ids")}
        sentence_tokens, examples = 0, 0
        for path in summary.output_files:
            for record in tf.data.TFRecordDataset(path):
                example = {k: v.numpy() for k, v in tf.io.parse_single_example(record, spec).items()}
                length = int(example["input_mask"].sum())
                assert example["input_mask"][:length].all() and not example["input_mask"][length:].any()
                specials = 3 if example["segment_ids"].any() else 2  # [CLS] A [SEP] (B [SEP])
                sentence_tokens += length - specials
                examples += 1
        assert examples == stats.examples
        # Every token of every valid line is in an example or counted as truncated.
        assert sentence_tokens + stats.truncated_tokens == tokens
