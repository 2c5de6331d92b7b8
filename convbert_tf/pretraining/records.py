"""Pretraining TFRecords and their bad records: checking a file's first records, scanning a file
for the records that cannot be read or parsed, and the run's handling of them (stop or skip).

A record is a tf.train.Example of three int64 features of length T (max_seq_length):
input_ids, input_mask, segment_ids (the original release's format). The input pipeline
(`input_pipeline`) reads through the handling kept here.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Callable, Iterator, Sequence

import numpy as np
import tensorflow as tf
from google.protobuf.message import DecodeError

FEATURE_KEYS = ("input_ids", "input_mask", "segment_ids")


def describe_record_problem(serialized: bytes, max_seq_length: int) -> str | None:
    """What keeps one serialized record from parsing as three int64 [T] features; None if it parses."""
    try:
        example = tf.train.Example.FromString(serialized)
    except DecodeError:  # not an Example at all
        return f"is not a serialized tf.train.Example ({len(serialized)} bytes)"
    features = example.features.feature
    for key in FEATURE_KEYS:
        if key not in features:
            return f"has no feature {key!r} (it has {sorted(features)})"
        feature = features[key]
        if feature.WhichOneof("kind") != "int64_list":
            return f"has feature {key!r} of kind {feature.WhichOneof('kind')}, not int64_list"
        found = len(feature.int64_list.value)
        if found != max_seq_length:
            return f"has feature {key!r} of length {found}, but max_seq_length is {max_seq_length}"
    return None


# ----- bad records: finding them after the pipeline failed, and leaving them out ---------------
BAD_RECORDS_CHOICES = ("fail", "skip")
_RECORD_FRAMING_BYTES = 16  # a TFRecord is: length (8), its CRC (4), the data, the data's CRC (4)


class BadRecordError(ValueError):
    """A TFRecord file holds a record that cannot be read or parsed; the message names it."""


@dataclasses.dataclass(frozen=True)
class BadRecords:
    """What `scan_file` found wrong in one TFRecord file.

    Attributes:
        path: the file.
        readable: records before a framing error (a truncated file, a CRC mismatch), or every
            record when the framing is intact. Nothing after a framing error can be read.
        unparseable: indices (< readable) of records that are not three int64 [T] features.
        framing_error: TensorFlow's message for the framing error, or None.
    """

    path: str
    readable: int
    unparseable: tuple = ()
    framing_error: str | None = None

    @property
    def count(self) -> int:
        """Bad records: each unparseable one, plus one for an unreadable tail."""
        return len(self.unparseable) + (self.framing_error is not None)

    @property
    def first_index(self) -> int:
        return self.unparseable[0] if self.unparseable else self.readable


def _count(dataset: tf.data.Dataset) -> int:
    return int(dataset.reduce(tf.constant(0, tf.int64), lambda n, _: n + 1))


def _tf_message(error: tf.errors.OpError) -> str:
    """TensorFlow's error message without the op and function names around it."""
    message = re.sub(r"\{\{function_node [^}]*\}\}\s*", "", error.message)
    return re.sub(r"\s*\[Op:\w+\].*$", "", message, flags=re.S).strip()


def scan_file(path: str, max_seq_length: int) -> BadRecords | None:
    """Reads every record of `path` (in tf.data, no per-record Python); None if all are good.

    A few passes over the file; meant for locating a bad record once training has hit one.
    """
    records = tf.data.TFRecordDataset(path)
    framing_error = None
    try:
        readable = _count(records)
    except (tf.errors.DataLossError, tf.errors.InvalidArgumentError) as e:
        framing_error = _tf_message(e)
        readable = _count(records.ignore_errors())  # the reader gives up on a file at its first error
    spec = {key: tf.io.FixedLenFeature([max_seq_length], tf.int64) for key in FEATURE_KEYS}
    parsed_indices = (
        records.take(readable).enumerate()
        .map(lambda index, record: (index, tf.io.parse_single_example(record, spec)))
        .ignore_errors()
        .map(lambda index, _: index)
        .batch(1 << 16)
    )
    good = np.concatenate([batch.numpy() for batch in parsed_indices] + [np.zeros([0], np.int64)])
    unparseable = tuple(int(i) for i in np.setdiff1d(np.arange(readable), good))
    if framing_error is None and not unparseable:
        return None
    return BadRecords(path, readable, unparseable, framing_error)


def record_offset(path: str, index: int) -> int:
    """Byte offset in `path` at which record `index` starts (counting the readable ones before it)."""
    sizes = tf.data.TFRecordDataset(path).take(index).map(tf.strings.length)
    return int(sizes.reduce(tf.constant(0, tf.int64),
                            lambda total, size: total + tf.cast(size, tf.int64) + _RECORD_FRAMING_BYTES))


def describe_bad_records(bad: BadRecords, max_seq_length: int) -> str:
    """'<path>: record <i> (byte offset <o>) <what is wrong>', plus how many more the file holds."""
    index = bad.first_index
    if bad.unparseable:
        serialized = next(iter(tf.data.TFRecordDataset(bad.path).skip(index).take(1))).numpy()
        problem = describe_record_problem(serialized, max_seq_length) or "does not parse"
    else:
        problem = f"cannot be read ({bad.framing_error}); the file is truncated or corrupt from here on"
    text = f"{bad.path}: record {index} (byte offset {record_offset(bad.path, index)}) {problem}"
    if bad.count > 1:
        text += f" ({bad.count - 1} more bad record(s) in this file)"
    return text


def find_bad_records(files: Sequence[str], max_seq_length: int, *, first_only: bool,
                     scanned: dict | None = None) -> list[BadRecords]:
    """Scans `files` in order for records that cannot be read or parsed.

    Args:
        files: TFRecord files.
        max_seq_length: T.
        first_only: stop at the first file with a bad record.
        scanned: earlier results by file (`BadRecords`, or None for a good file); those files are
            not scanned again, and every new result is added, so repeated calls read each file once.

    Returns:
        A `BadRecords` for each newly scanned file with bad records, in file order.
    """
    scanned = {} if scanned is None else scanned
    found = []
    for path in files:
        if path in scanned:
            continue
        scanned[path] = scan_file(path, max_seq_length)
        if scanned[path] is not None:
            found.append(scanned[path])
            if first_only:
                break
    return found


@dataclasses.dataclass
class BadRecordTracker:
    """A run's handling of bad records, shared by every reader of its records (the start-up
    check, training, eval), and what it has found of them.

    Attributes:
        mode: "fail" (a bad record stops the run with BadRecordError naming it) or "skip" (it is
            left out and counted).
        report: called with each line about bad records: a failed read, a file whose bad
            records are skipped, a summary.
        scanned: file -> its `BadRecords`, or None for a file found good; each file is scanned at
            most once per run.
    """

    mode: str = "fail"
    report: Callable[[str], None] = print
    scanned: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        if self.mode not in BAD_RECORDS_CHOICES:
            raise ValueError(f"bad_records is {self.mode!r}; use one of {list(BAD_RECORDS_CHOICES)}")

    @property
    def excluded(self) -> dict:
        """The bad records to leave out, by file (see `pretraining_dataset`)."""
        return {path: bad for path, bad in self.scanned.items() if bad is not None}

    @property
    def count(self) -> int:
        return sum(bad.count for bad in self.excluded.values())

    def summary(self) -> str:
        return f"skipped {self.count} bad record(s) in {len(self.excluded)} file(s)"

    def handle(self, bad: BadRecords, max_seq_length: int, where: str) -> None:
        """Under "fail", raises BadRecordError naming the file's first bad record and `where` it
        was found; under "skip", reports it (it is left out from now on, being in `scanned`)."""
        message = describe_bad_records(bad, max_seq_length)
        if self.mode == "fail":
            raise BadRecordError(
                f"{message}. {where}. Rebuild or remove that file, or pass --bad_records=skip (\"bad_records\": "
                "\"skip\" in --hparams) to leave bad records out and count them")
        self.report(f"skipping: {message}")

    def locate(self, files: Sequence[str], max_seq_length: int, error: tf.errors.OpError, where: str) -> None:
        """After a reader of `files` failed with `error`: scans the files not scanned yet, in
        order, up to the first with a bad record, and handles that one (see `handle`).

        Raises:
            `error` again when no file holds a bad record (the failure is not the data's).
        """
        self.report(f"the input pipeline failed ({type(error).__name__}); looking for bad records in "
                    f"{len(files)} file(s)")
        found = find_bad_records(files, max_seq_length, first_only=True, scanned=self.scanned)
        if not found:
            raise error
        self.handle(found[0], max_seq_length, where)


def _written_length(serialized: bytes) -> int | None:
    """The length of a record's three int64 features; None unless it has all three, of one length."""
    try:
        features = tf.train.Example.FromString(serialized).features.feature
    except DecodeError:
        return None
    if not all(key in features and features[key].WhichOneof("kind") == "int64_list" for key in FEATURE_KEYS):
        return None
    lengths = {len(features[key].int64_list.value) for key in FEATURE_KEYS}
    return lengths.pop() if len(lengths) == 1 else None


def _read_first_records(path: str, count: int, max_seq_length: int) -> tuple[int, bool]:
    """Reads up to `count` first records of `path`: (how many were good, whether a bad one followed).

    Raises:
        ValueError: the first record is well-formed but of another length than max_seq_length
            (the records were written for another length: a setting to fix, not a bad record).
    """
    good = 0
    try:
        for record in tf.data.TFRecordDataset(path).take(count):
            serialized = record.numpy()
            problem = describe_record_problem(serialized, max_seq_length)
            if problem is None:
                good += 1
                continue
            length = _written_length(serialized)
            if length is None or good:
                return good, True
            raise ValueError(
                f"{path}: record {good} {problem}; pretraining records need int64 features {list(FEATURE_KEYS)} "
                f"of length max_seq_length. Rebuild the records with --max_seq_length {max_seq_length}, or set "
                f"max_seq_length to {length}, the records' length.")
    except (tf.errors.DataLossError, tf.errors.InvalidArgumentError):  # a truncated or corrupt record
        return good, True
    return good, False


def check_first_records(files: Sequence[str], max_seq_length: int, bad_records: BadRecordTracker | None = None,
                        *, count: int = 1, where: str = "The input pipeline's start-up check found it") -> str:
    """The start-up check of an input pipeline: finds, in file order, a file whose first `count`
    records can be read and parsed, and checks their length. Normally one record is read.

    An empty file (the dataset builder writes empty shards when there are fewer examples than
    files) is passed over. A file with a bad record among its first `count` is scanned and handed
    to `bad_records`: under "fail" that raises; under "skip" its bad records are counted and left
    out, and the check moves on unless `count` of its records are good.

    Args:
        files: TFRecord files, in the order the pipeline reads them.
        max_seq_length: T.
        bad_records: the run's bad-record handling (a new "fail" one if None).
        count: good records a file must hold: 1, or k + 1 for input pipeline k when the
            pipelines split every file's records between them.
        where: what the message of a bad record says about where it was found.

    Returns:
        The file found.

    Raises:
        BadRecordError: a bad record under "fail" (naming the file, record and byte offset); no
            file holds `count` good records (naming the files).
        ValueError: the records were written for another max_seq_length (naming both lengths).
    """
    bad_records = bad_records if bad_records is not None else BadRecordTracker()
    for path in files:
        if bad_records.scanned.get(path) is None:  # not scanned, or scanned and found good
            good, bad = _read_first_records(path, count, max_seq_length)
            if not bad:
                if good == count:
                    return path
                continue  # too few records: an empty (or short) file
            bad_records.scanned[path] = scan_file(path, max_seq_length)
            bad_records.handle(bad_records.scanned[path], max_seq_length, where)
        found = bad_records.scanned[path]
        if found.readable - len(found.unparseable) >= count:
            return path
    with_bad = sum(bad_records.scanned.get(f) is not None for f in files)
    what = "a readable record" if count == 1 else (
        f"{count} readable records (input pipeline {count - 1} reads every few records of each file, "
        f"from record {count - 1} on)")
    raise BadRecordError(
        f"no file holds {what}: {_name_files(files)} ({len(files) - with_bad} empty or too short, {with_bad} "
        "with bad records); rebuild them with build_pretraining_dataset.py, or point the run at other records")


def _name_files(files: Sequence[str]) -> str:
    return files[0] if len(files) == 1 else f"{files[0]} and {len(files) - 1} more file(s)"


def read_batches(make_iterator: Callable[[int], Iterator], files: Sequence[str], max_seq_length: int,
                 bad_records: BadRecordTracker, reader: str) -> Iterator:
    """Yields the elements of `make_iterator(0)` to its end, going through `bad_records` when a
    read fails: the bad record is located in `files` (`BadRecordTracker.locate`; under "fail"
    that raises, naming it), and reading goes on from `make_iterator(n)`, a new iterator that
    leaves out the records `bad_records` now holds, past the n elements already yielded.

    Args:
        make_iterator: skip count -> an iterator over batches (its pipeline given `bad_records`).
        files: the files the iterators read, scanned when one fails.
        max_seq_length: T.
        bad_records: the run's bad-record handling.
        reader: what reads, for the message of a bad record ("Evaluation").
    """
    done = 0
    iterator = make_iterator(0)
    while True:
        try:
            element = next(iterator)
        except (StopIteration, tf.errors.OutOfRangeError):
            return
        except (tf.errors.DataLossError, tf.errors.InvalidArgumentError) as error:
            bad_records.locate(files, max_seq_length, error, f"{reader} stopped after {done} batches")
            iterator = make_iterator(done)
            continue
        done += 1
        yield element
