"""The corpus of a pretraining dataset: which files it holds, and their lines as text.

A corpus is a directory of UTF-8 text files, one sentence or paragraph per line. Imported by
the dataset builder (pretraining_dataset.py, packing.py) and the vocab learner's callers.
"""
import os
from typing import Iterator, Sequence

ON_BAD_UTF8_CHOICES = ("fail", "skip")


class DatasetBuildError(Exception):
    """A problem with the inputs or options that the user can fix; the message says what and where."""


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


def read_corpus_lines(path: str, on_bad_utf8: str, stats=None) -> Iterator[str]:
    """Yields the stripped lines of a corpus file, decoded as UTF-8.

    Lines end at "\\n" only. A line that is not valid UTF-8 raises DatasetBuildError naming the
    file and line (`on_bad_utf8="fail"`), or is skipped and counted in `stats.skipped_lines`
    (`"skip"`; the first one's file and line go to `stats.first_skipped_line`; `stats` is a
    `packing.BuildStats` or None).
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
