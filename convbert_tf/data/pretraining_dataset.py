"""Building the pretraining TFRecords from a directory of text files (original release §4.1).

Layout of the corpus: every regular, non-hidden file under `corpus_dir` (recursively, sorted by
path) is UTF-8 text with one sentence or paragraph per line. A file is one document; with
`blanks_separate_docs`, blank lines also end documents (otherwise they are skipped).

Output: `pretrain_data.tfrecord-{i}-of-{N}` in `output_dir`, each record a `tf.train.Example` with
int64 features `input_ids`, `input_mask` and `segment_ids`, each exactly `max_seq_length` long.

Parallelism and determinism: job j of P owns the corpus files at sorted positions i ≡ j (mod P)
and the output files i ≡ j (mod P), shuffles its files with its own `random.Random("{seed}:{j}")`,
packs with the same generator, and writes its examples round-robin into its output files. The
output is therefore fixed by (corpus, vocab, options, seed, P, N).

Safety of earlier outputs: every output file is first written under `<output_dir>/.tmp-<pid>/`,
and only when every job has finished are the files moved into place (os.replace) and stale
`pretrain_data.tfrecord-*-of-*` files from an earlier run with a different N removed. A failed
run removes its temporary directory and leaves `output_dir` as it was. Nothing else in
`output_dir` is touched.
"""
import dataclasses
import multiprocessing
import os
import queue
import random
import re
import shutil
import sys
import time
import traceback
from typing import Callable, Iterator, Optional, Sequence

import tensorflow as tf

from convbert_tf.data import example_builder
from convbert_tf.data import tokenization
from convbert_tf.data import vocab as vocab_lib

OUTPUT_PREFIX = "pretrain_data.tfrecord"
_OUTPUT_NAME = re.compile(r"pretrain_data\.tfrecord-\d+-of-\d+")
ON_BAD_UTF8_CHOICES = ("fail", "skip")
_LINES_PER_BATCH = 1024


class DatasetBuildError(Exception):
    """A problem with the inputs or options that the user can fix; the message says what and where."""


def output_file_name(index: int, num_files: int) -> str:
    return f"{OUTPUT_PREFIX}-{index}-of-{num_files}"


@dataclasses.dataclass
class BuildStats:
    """Counts from one job, or summed over all jobs."""

    files: int = 0
    documents: int = 0  # documents with at least one non-blank line
    examples: int = 0
    tokens: int = 0  # non-padding positions written ([CLS] and [SEP] included)
    truncated_tokens: int = 0  # sentence tokens cut off because an example overflowed
    skipped_lines: int = 0  # lines of invalid UTF-8 skipped under on_bad_utf8="skip"
    first_skipped_line: str = ""  # "<file>:<line>" of the first of them (of the first job with any)

    def __add__(self, other: "BuildStats") -> "BuildStats":
        counts = {f.name: getattr(self, f.name) + getattr(other, f.name)
                  for f in dataclasses.fields(self) if f.name != "first_skipped_line"}
        return BuildStats(**counts, first_skipped_line=self.first_skipped_line or other.first_skipped_line)


@dataclasses.dataclass(frozen=True)
class BuildSummary:
    """What `build_pretraining_dataset` did."""

    stats: BuildStats
    output_files: tuple  # absolute paths, in shard order
    vocab_file: str
    vocab_size: int
    vocab_learned: bool  # True when the vocab was learned from the corpus in this run


@dataclasses.dataclass(frozen=True)
class Progress:
    files_done: int
    files_total: int
    examples: int
    elapsed_s: float


@dataclasses.dataclass(frozen=True)
class _JobSpec:
    job_id: int
    files: tuple
    shard_indices: tuple
    num_output_files: int
    tmp_dir: str
    vocab_tokens: tuple
    max_seq_length: int
    blanks_separate_docs: bool
    do_lower_case: bool
    strip_accents: bool
    seed: int
    on_bad_utf8: str
    original_segment_bug: bool


def find_corpus_files(corpus_dir, exclude: Sequence = ()) -> list:
    """Every regular, non-hidden file under `corpus_dir`, recursively, sorted by relative path.

    Args:
      corpus_dir: the corpus directory.
      exclude: files or directories to leave out (e.g. an output directory inside the corpus).

    Raises:
      DatasetBuildError: the directory is missing, not a directory, empty, or holds no files.
    """
    corpus_dir = os.fspath(corpus_dir)
    if not os.path.exists(corpus_dir):
        raise DatasetBuildError(f"corpus directory {corpus_dir} does not exist")
    if not os.path.isdir(corpus_dir):
        raise DatasetBuildError(f"corpus directory {corpus_dir} is not a directory")
    excluded = {os.path.realpath(os.fspath(path)) for path in exclude if path is not None}
    found = []
    any_entry = False
    for root, dirs, names in os.walk(corpus_dir):
        any_entry = any_entry or bool(dirs or names)
        dirs[:] = sorted(
            d
            for d in dirs
            if not d.startswith(".") and os.path.realpath(os.path.join(root, d)) not in excluded
        )
        for name in names:
            path = os.path.join(root, name)
            if name.startswith(".") or not os.path.isfile(path) or os.path.realpath(path) in excluded:
                continue
            found.append(path)
    if not any_entry:
        raise DatasetBuildError(
            f"corpus directory {corpus_dir} is empty; put UTF-8 text files (one sentence or "
            "paragraph per line) in it"
        )
    if not found:
        raise DatasetBuildError(
            f"corpus directory {corpus_dir} holds no text files (hidden files and directories are "
            "skipped)"
        )
    return sorted(found, key=lambda path: os.path.relpath(path, corpus_dir))


def read_corpus_lines(path: str, on_bad_utf8: str, stats: Optional[BuildStats] = None) -> Iterator[str]:
    """Yields the stripped lines of a corpus file, decoded as UTF-8.

    Lines end at "\\n" only. A line that is not valid UTF-8 raises DatasetBuildError naming the
    file and line (`on_bad_utf8="fail"`), or is skipped and counted in `stats.skipped_lines`
    (`"skip"`; the first one's file and line go to `stats.first_skipped_line`).
    """
    try:
        f = open(path, "rb")
    except OSError as e:
        raise DatasetBuildError(f"cannot read corpus file {path}: {e.strerror}") from None
    with f:
        line_number = 0
        while True:
            try:
                raw = f.readline()
            except OSError as e:
                raise DatasetBuildError(
                    f"cannot read corpus file {path} after line {line_number}: {e.strerror}"
                ) from None
            if not raw:
                return
            line_number += 1
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                if on_bad_utf8 == "skip":
                    if stats is not None:
                        stats.skipped_lines += 1
                        stats.first_skipped_line = stats.first_skipped_line or f"{path}:{line_number}"
                    continue
                raise DatasetBuildError(
                    f"{path}:{line_number}: invalid UTF-8 (byte 0x{raw[e.start]:02x} at column "
                    f"{e.start + 1}); fix the file, or pass --on_bad_utf8=skip to skip and count "
                    "such lines"
                ) from None
            yield line.strip()


def _serialize(example: example_builder.PretrainingExample) -> bytes:
    def int64_feature(values):
        return tf.train.Feature(int64_list=tf.train.Int64List(value=values))

    features = tf.train.Features(
        feature={
            "input_ids": int64_feature(example.input_ids),
            "input_mask": int64_feature(example.input_mask),
            "segment_ids": int64_feature(example.segment_ids),
        }
    )
    # deterministic=True fixes the order of the feature map, so equal runs give equal bytes.
    return tf.train.Example(features=features).SerializeToString(deterministic=True)


def _file_examples(path, spec, tokenizer, builder, stats) -> Iterator[example_builder.PretrainingExample]:
    """Examples completed while reading one file; the end of the file ends a document."""
    document_open = False

    def replay(items):
        nonlocal document_open
        sentences = iter(tokenizer.tokenize([item for item in items if item is not None]))
        for item in items:
            if item is None:
                if document_open:
                    stats.documents += 1
                    document_open = False
                example = builder.end_document()
            else:
                document_open = True
                example = builder.add_sentence(next(sentences))
            if example is not None:
                yield example

    pending = []  # sentences (str) and document boundaries (None), in file order
    for line in read_corpus_lines(path, spec.on_bad_utf8, stats):
        if line:
            pending.append(line)
        elif spec.blanks_separate_docs:
            pending.append(None)
        if len(pending) >= _LINES_PER_BATCH:
            yield from replay(pending)
            pending = []
    pending.append(None)
    yield from replay(pending)


def _run_job(spec: _JobSpec, report: Callable[[tuple], None]) -> BuildStats:
    rng = random.Random(f"{spec.seed}:{spec.job_id}")
    files = list(spec.files)
    rng.shuffle(files)
    tokenizer = tokenization.BertTokenizer(spec.vocab_tokens, spec.do_lower_case, spec.strip_accents)
    ids = tokenizer.special_token_ids
    builder = example_builder.ExampleBuilder(
        spec.max_seq_length, ids.cls, ids.sep, ids.pad, rng, spec.original_segment_bug
    )
    stats = BuildStats()
    writers = [
        tf.io.TFRecordWriter(os.path.join(spec.tmp_dir, output_file_name(i, spec.num_output_files)))
        for i in spec.shard_indices
    ]
    try:
        for path in files:
            for example in _file_examples(path, spec, tokenizer, builder, stats):
                writers[stats.examples % len(writers)].write(_serialize(example))
                stats.examples += 1
                stats.tokens += sum(example.input_mask)
            stats.files += 1
            report(("progress", spec.job_id, stats.files, stats.examples))
    finally:
        for writer in writers:
            writer.close()
    stats.truncated_tokens = builder.truncated_tokens
    return stats


def _job_process_main(spec: _JobSpec, messages) -> None:
    """Entry point of a spawned job process: runs the job and reports through `messages`."""
    try:
        stats = _run_job(spec, messages.put)
        messages.put(("done", spec.job_id, stats))
    except DatasetBuildError as e:
        messages.put(("error", spec.job_id, str(e), True))
    except BaseException:  # a bug: hand the traceback to the parent
        messages.put(("error", spec.job_id, traceback.format_exc(), False))


class _ProgressTracker:
    def __init__(self, num_jobs, files_total, callback):
        self._files = [0] * num_jobs
        self._examples = [0] * num_jobs
        self._files_total = files_total
        self._callback = callback
        self._start = time.monotonic()

    def __call__(self, message):
        _, job_id, files_done, examples = message
        self._files[job_id] = files_done
        self._examples[job_id] = examples
        if self._callback is not None:
            elapsed_s = time.monotonic() - self._start
            self._callback(
                Progress(sum(self._files), self._files_total, sum(self._examples), elapsed_s)
            )


def _run_jobs_in_processes(specs, tracker) -> BuildStats:
    context = multiprocessing.get_context("spawn")  # TensorFlow is not fork-safe
    messages = context.Queue()
    processes = [
        context.Process(target=_job_process_main, args=(spec, messages), daemon=True) for spec in specs
    ]
    total = BuildStats()
    try:
        for process in processes:
            process.start()
        pending = set(range(len(specs)))
        while pending:
            try:
                message = messages.get(timeout=1.0)
            except queue.Empty:
                for job_id in pending:
                    code = processes[job_id].exitcode
                    if code is not None and code != 0:
                        raise RuntimeError(f"pretraining data job {job_id} died with exit code {code}")
                continue
            kind, job_id = message[0], message[1]
            if kind == "progress":
                tracker(message)
            elif kind == "done":
                total = total + message[2]
                pending.discard(job_id)
            elif message[3]:
                raise DatasetBuildError(message[2])
            else:
                raise RuntimeError(f"pretraining data job {job_id} failed:\n{message[2]}")
    finally:
        for process in processes:
            if process.is_alive():
                process.terminate()
            process.join()
    return total


def _publish(tmp_dir, output_dir, names) -> None:
    """Moves the new files into `output_dir`, then removes our stale files of an earlier run."""
    for name in names:
        os.replace(os.path.join(tmp_dir, name), os.path.join(output_dir, name))
    keep = set(names)
    for name in os.listdir(output_dir):
        if _OUTPUT_NAME.fullmatch(name) and name not in keep:
            os.remove(os.path.join(output_dir, name))


def _prepare_vocab(vocab_file, vocab_size, files, do_lower_case, strip_accents, on_bad_utf8, log):
    """Returns (tokens, learned): reads `vocab_file`, or learns and writes it if it is missing."""
    if os.path.exists(vocab_file):
        if vocab_size is not None:
            log(f"vocab file {vocab_file} exists; using it (vocab_size {vocab_size} is not used)")
        learned = False
    else:
        log(f"learning a WordPiece vocab of about {vocab_size} tokens from {len(files)} file(s)")

        def corpus_text():
            for path in files:
                yield from read_corpus_lines(path, on_bad_utf8)

        tokens = vocab_lib.learn_wordpiece_vocab(corpus_text(), vocab_size, do_lower_case, strip_accents)
        try:
            vocab_lib.write_vocab(vocab_file, tokens)
        except OSError as e:
            raise DatasetBuildError(f"cannot write vocab file {vocab_file}: {e.strerror}") from None
        log(f"wrote {len(tokens)} tokens to {vocab_file}")
        learned = True
    try:
        return tokenization.read_vocab(vocab_file), learned
    except tokenization.VocabError as e:
        raise DatasetBuildError(str(e)) from None


def build_pretraining_dataset(
    corpus_dir,
    output_dir,
    vocab_file=None,
    *,
    vocab_size: Optional[int] = None,
    max_seq_length: int = 128,
    num_processes: int = 1,
    num_output_files: int = 1000,
    blanks_separate_docs: bool = False,
    do_lower_case: bool = True,
    strip_accents: bool = True,
    seed: int = 0,
    on_bad_utf8: str = "fail",
    original_segment_bug: bool = False,
    progress: Optional[Callable[[Progress], None]] = None,
    log: Optional[Callable[[str], None]] = None,
) -> BuildSummary:
    """Tokenizes a text corpus and writes packed pretraining examples as TFRecords.

    Args:
      corpus_dir: directory of UTF-8 text files (see the module docstring).
      output_dir: where the TFRecords go; created if missing. Only our own
        `pretrain_data.tfrecord-*-of-*` files in it are ever replaced or removed.
      vocab_file: WordPiece vocab; default `<output_dir>/vocab.txt`.
      vocab_size: if given and `vocab_file` does not exist, learn a vocab of about this size from
        the corpus and write it to `vocab_file`. An existing `vocab_file` is never overwritten.
      max_seq_length: T, the length of every example.
      num_processes: P, parallel jobs (spawned processes when P > 1).
      num_output_files: N output files; at least P.
      blanks_separate_docs: blank lines end documents (else only the end of a file does).
      do_lower_case, strip_accents: tokenizer options (see `tokenization`).
      seed: seed of the per-job random generators.
      on_bad_utf8: "fail" (error naming file and line) or "skip" (skip the line and count it).
      original_segment_bug: pack segments with the original release's condition (§9.10).
      progress: called with a `Progress` after each finished file.
      log: called with one-line notes (vocab learning, reuse of an existing vocab).

    Returns:
      A `BuildSummary`.

    Raises:
      DatasetBuildError: a user-fixable problem; the message names the path, line or option.
    """
    log = log or (lambda message: None)
    if on_bad_utf8 not in ON_BAD_UTF8_CHOICES:
        raise DatasetBuildError(f"on_bad_utf8 must be one of {ON_BAD_UTF8_CHOICES}, got {on_bad_utf8!r}")
    if max_seq_length < example_builder.MIN_RANDOM_TARGET:
        raise DatasetBuildError(
            f"max_seq_length must be at least {example_builder.MIN_RANDOM_TARGET}, got {max_seq_length}"
        )
    if num_processes < 1:
        raise DatasetBuildError(f"num_processes must be at least 1, got {num_processes}")
    if num_output_files < num_processes:
        raise DatasetBuildError(
            f"num_output_files ({num_output_files}) must be at least num_processes ({num_processes}): "
            "every job writes its own output files"
        )
    output_dir = os.path.abspath(os.fspath(output_dir))
    vocab_file = os.fspath(vocab_file) if vocab_file is not None else os.path.join(output_dir, "vocab.txt")
    files = find_corpus_files(corpus_dir, exclude=(output_dir, vocab_file))
    if not os.path.exists(vocab_file) and vocab_size is None:
        raise DatasetBuildError(
            f"vocab file {vocab_file} does not exist; pass an existing --vocab_file, or "
            "--vocab_size to learn a vocab from the corpus and write it there"
        )
    if os.path.exists(output_dir) and not os.path.isdir(output_dir):
        raise DatasetBuildError(f"output directory {output_dir} exists and is not a directory")
    try:
        os.makedirs(output_dir, exist_ok=True)
    except OSError as e:
        raise DatasetBuildError(f"cannot create output directory {output_dir}: {e.strerror}") from None
    tokens, learned = _prepare_vocab(
        vocab_file, vocab_size, files, do_lower_case, strip_accents, on_bad_utf8, log
    )

    tmp_dir = os.path.join(output_dir, f".tmp-{os.getpid()}")
    shutil.rmtree(tmp_dir, ignore_errors=True)  # left by a crashed run that had our pid
    os.makedirs(tmp_dir)
    specs = [
        _JobSpec(
            job_id=job_id,
            files=tuple(files[job_id::num_processes]),
            shard_indices=tuple(range(job_id, num_output_files, num_processes)),
            num_output_files=num_output_files,
            tmp_dir=tmp_dir,
            vocab_tokens=tuple(tokens),
            max_seq_length=max_seq_length,
            blanks_separate_docs=blanks_separate_docs,
            do_lower_case=do_lower_case,
            strip_accents=strip_accents,
            seed=seed,
            on_bad_utf8=on_bad_utf8,
            original_segment_bug=original_segment_bug,
        )
        for job_id in range(num_processes)
    ]
    tracker = _ProgressTracker(num_processes, len(files), progress)
    names = [output_file_name(i, num_output_files) for i in range(num_output_files)]
    try:
        if num_processes == 1:
            stats = _run_job(specs[0], tracker)
        else:
            stats = _run_jobs_in_processes(specs, tracker)
        _publish(tmp_dir, output_dir, names)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)
    return BuildSummary(
        stats=stats,
        output_files=tuple(os.path.join(output_dir, name) for name in names),
        vocab_file=vocab_file,
        vocab_size=len(tokens),
        vocab_learned=learned,
    )


class ProgressPrinter:
    """Shows `Progress` on a stream: one rewritten line on a terminal, else a line every 30 s."""

    def __init__(self, stream=None, interval_s: Optional[float] = None):
        self._stream = stream if stream is not None else sys.stderr
        self._tty = self._stream.isatty()
        self._interval_s = interval_s if interval_s is not None else (0.2 if self._tty else 30.0)
        self._last = None
        self._shown = False

    def __call__(self, progress: Progress) -> None:
        done = progress.files_done == progress.files_total
        now = time.monotonic()
        if not done and self._last is not None and now - self._last < self._interval_s:
            return
        self._last = now
        eta = ""
        if 0 < progress.files_done < progress.files_total:
            remaining = progress.elapsed_s * (progress.files_total / progress.files_done - 1)
            eta = f", ETA {remaining:.0f}s"
        line = (
            f"{progress.files_done}/{progress.files_total} files, {progress.examples} examples, "
            f"{progress.elapsed_s:.0f}s{eta}"
        )
        if self._tty:
            self._stream.write("\r" + line + "\033[K")
        else:
            self._stream.write(line + "\n")
        self._shown = True
        self._stream.flush()

    def finish(self) -> None:
        """Ends the rewritten line on a terminal."""
        if self._tty and self._shown:
            self._stream.write("\n")
            self._stream.flush()
