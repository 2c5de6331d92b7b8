"""Building the pretraining TFRecords from a directory of text files (as `build_pretraining_dataset.py` of
google-research/electra, which ConvBERT's release uses).

Layout of the corpus: every regular, non-hidden file under `corpus_dir` (recursively, sorted by
path) is UTF-8 text with one sentence or paragraph per line. A file is one document; with
`blanks_separate_docs`, blank lines also end documents (otherwise they are skipped).

Output: `pretrain_data.tfrecord-{i}-of-{N}` in `output_dir`, each record a `tf.train.Example` with
int64 features `input_ids`, `input_mask` and `segment_ids`, each exactly `max_seq_length` long.

Parallelism and determinism: job j of P owns the corpus files at sorted positions i ≡ j (mod P)
and the output files i ≡ j (mod P), shuffles its files with its own `random.Random("{seed}:{j}")`,
packs with the same generator, and writes its examples round-robin into its output files. The
output is therefore fixed by (corpus, vocab, options, seed, P, N).

Rooms: corpus_files.py (finding and reading the corpus), packing.py (one job: tokenize, pack,
write), parallel_jobs.py (running the jobs, progress, moving the shards into place); this module
checks the options, prepares the vocab and ties them together.

Safety of earlier outputs: every output file is first written under a temporary directory in
`output_dir` (a name of `convbert_tf.io.temporary_name`),
and only when every job has finished are the files moved into place (os.replace) and stale
`pretrain_data.tfrecord-*-of-*` files from an earlier run with a different N removed. A failed
run removes its temporary directory and leaves `output_dir` as it was. Nothing else in
`output_dir` is touched.
"""
import dataclasses
import os
import shutil
import sys
import time
from typing import Callable, Optional

from convbert_tf import io
from convbert_tf.data import example_builder, packing, parallel_jobs
from convbert_tf.data import tokenization
from convbert_tf.data import vocab as vocab_lib
from convbert_tf.data.corpus_files import (ON_BAD_UTF8_CHOICES, DatasetBuildError, find_corpus_files,
                                           read_corpus_lines)
from convbert_tf.data.packing import BuildStats
from convbert_tf.data.parallel_jobs import Progress


@dataclasses.dataclass(frozen=True)
class BuildSummary:
    """What `build_pretraining_dataset` did."""

    stats: BuildStats
    output_files: tuple  # absolute paths, in shard order
    vocab_file: str
    vocab_size: int
    vocab_learned: bool  # True when the vocab was learned from the corpus in this run


def _check_options(on_bad_utf8, max_seq_length, num_processes, num_output_files) -> None:
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


def _make_output_dir(output_dir) -> None:
    if os.path.exists(output_dir) and not os.path.isdir(output_dir):
        raise DatasetBuildError(f"output directory {output_dir} exists and is not a directory")
    try:
        os.makedirs(output_dir, exist_ok=True)
    except OSError as e:
        raise DatasetBuildError(f"cannot create output directory {output_dir}: {e.strerror}") from None


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
      original_segment_bug: pack segments with the original release's condition (see `example_builder`).
      progress: called with a `Progress` after each finished file.
      log: called with one-line notes (vocab learning, reuse of an existing vocab).

    Returns:
      A `BuildSummary`.

    Raises:
      DatasetBuildError: a user-fixable problem; the message names the path, line or option.
    """
    log = log or (lambda message: None)
    _check_options(on_bad_utf8, max_seq_length, num_processes, num_output_files)
    output_dir = os.path.abspath(os.fspath(output_dir))
    vocab_file = os.fspath(vocab_file) if vocab_file is not None else os.path.join(output_dir, "vocab.txt")
    files = find_corpus_files(corpus_dir, exclude=(output_dir, vocab_file))
    if not os.path.exists(vocab_file) and vocab_size is None:
        raise DatasetBuildError(
            f"vocab file {vocab_file} does not exist; pass an existing --vocab_file, or "
            "--vocab_size to learn a vocab from the corpus and write it there"
        )
    _make_output_dir(output_dir)
    tokens, learned = _prepare_vocab(
        vocab_file, vocab_size, files, do_lower_case, strip_accents, on_bad_utf8, log
    )
    tmp_dir = io.temporary_name(os.path.join(output_dir, packing.OUTPUT_PREFIX))
    os.makedirs(tmp_dir)
    common = dict(num_output_files=num_output_files, tmp_dir=tmp_dir, vocab_tokens=tuple(tokens),
                  max_seq_length=max_seq_length, blanks_separate_docs=blanks_separate_docs,
                  do_lower_case=do_lower_case, strip_accents=strip_accents, seed=seed, on_bad_utf8=on_bad_utf8,
                  original_segment_bug=original_segment_bug)
    specs = [
        packing.JobSpec(job_id=job_id, files=tuple(files[job_id::num_processes]),
                        shard_indices=tuple(range(job_id, num_output_files, num_processes)), **common)
        for job_id in range(num_processes)
    ]
    tracker = parallel_jobs.ProgressTracker(num_processes, len(files), progress)
    names = [packing.output_file_name(i, num_output_files) for i in range(num_output_files)]
    try:
        stats = parallel_jobs.run_jobs(specs, tracker)
        parallel_jobs.publish(tmp_dir, output_dir, names)
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
