"""Every damaged shard, wherever it lies, under both bad_records modes: a message naming the file, or
a finished read with the right count.

Runs the pretraining run's own reading path in-process on tiny records: the start-up check
(`trainer.check_records`), then each file set read to its end through `records.read_batches`
(which eval uses; training's loop differs only in catching the error inside its step loop, which
the end-to-end runs in test_data_faults.py cover). The files are split as `trainer.split_files`
does: the last one is held out for eval when there are several.
"""

import os
import re

import numpy as np
import pytest
import tensorflow as tf

from convbert_tf.pretraining import input_pipeline, records
from convbert_tf.pretraining import run as trainer
from convbert_tf.pretraining.records import BadRecordError, BadRecordTracker
from pretraining_data import example

T = 8
RECORDS_PER_FILE = 6
FRAMING = 16  # bytes around each record's data: length (8), its CRC (4), the data's CRC (4)
HEADER = 12  # length and its CRC, before the data


def record(file_index, index):
    """A record whose first input_id identifies it: 1000 * (file + 1) + index (each the same size)."""
    return example([1000 * (file_index + 1) + index, 7, 7], T).SerializeToString()


def offset_of(index):
    return index * (len(record(0, 0)) + FRAMING)


def cut_mid_record(data):
    return data[:offset_of(3) + HEADER + 5]


def flip_payload_byte(data):
    return data[:HEADER + 4] + bytes([data[HEADER + 4] ^ 0x40]) + data[HEADER + 5:]


def flip_length_byte(data):
    at = offset_of(2) + 1
    return data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1:]


def zero_length(data):
    return b""


def random_bytes(data):
    return np.random.default_rng(7).integers(0, 256, size=300, dtype=np.uint8).tobytes()


# damage -> (what it does to a file's bytes, the record it breaks (None: none), the records left readable)
DAMAGES = {
    "cut_mid_record": (cut_mid_record, 3, 3),
    "flipped_payload_byte": (flip_payload_byte, 0, 0),
    "flipped_length_byte": (flip_length_byte, 2, 2),
    "zero_length": (zero_length, None, 0),  # an empty shard, as the builder writes for a small corpus
    "random_bytes": (random_bytes, 0, 0),
}
# position -> (number of files, index of the damaged one)
POSITIONS = {"first": (4, 0), "middle": (4, 1), "last_held_out": (4, 3), "only": (1, 0)}


def write_files(directory, num_files, damaged, damage):
    files = []
    for f in range(num_files):
        path = os.path.join(directory, f"pretrain_data.tfrecord-{f}-of-{num_files}")
        with tf.io.TFRecordWriter(path) as writer:
            for i in range(RECORDS_PER_FILE):
                writer.write(record(f, i))
        if f == damaged:
            with open(path, "rb") as handle:
                data = handle.read()
            with open(path, "wb") as handle:
                handle.write(damage(data))
        files.append(path)
    return files


def read_like_a_run(files, bad_records):
    """The run's reading of train files, then (with several files) of the held-out last one.

    Returns {"train": ids read, "eval": ids read}; raises what the run would stop with.
    """
    train_files, eval_files = (files[:-1], files[-1:]) if len(files) > 1 else (files, [])
    read = {}
    for name, part in (("train", train_files), ("eval", eval_files)):
        if not part:
            continue
        trainer.check_records(part, T, bad_records, f"The start-up check found it before {name}")
        files_read = list(part)
        batches = records.read_batches(
            lambda skip: iter(input_pipeline.pretraining_dataset(part, 1, T, is_training=False,
                                                                 bad_records=bad_records).skip(skip)),
            files_read, T, bad_records, name)
        read[name] = sorted(int(batch["input_ids"][0, 0]) for batch in batches)
    return read


def expected_ids(num_files, damaged, readable):
    """Ids of the records a run reads: all, less those of the damaged file from `readable` on."""
    ids = {f: [1000 * (f + 1) + i for i in range(RECORDS_PER_FILE)] for f in range(num_files)}
    ids[damaged] = ids[damaged][:readable]
    if num_files == 1:
        return {"train": ids[0]}
    return {"train": sorted(i for f in range(num_files - 1) for i in ids[f]), "eval": ids[num_files - 1]}


@pytest.mark.parametrize("mode", ["fail", "skip"])
@pytest.mark.parametrize("position", list(POSITIONS))
@pytest.mark.parametrize("damage", list(DAMAGES))
def test_damaged_shard(tmp_path, mode, position, damage):
    damage_fn, first_bad, readable = DAMAGES[damage]
    num_files, damaged = POSITIONS[position]
    files = write_files(str(tmp_path), num_files, damaged, damage_fn)
    path = files[damaged]
    lines = []
    bad_records = BadRecordTracker(mode, report=lines.append)
    nothing_readable = readable == 0 and position in ("only", "last_held_out")  # the file is its reader's only one

    if first_bad is not None and mode == "fail":
        with pytest.raises(BadRecordError) as error:
            read_like_a_run(files, bad_records)
        assert str(error.value).startswith(f"{path}: record {first_bad} (byte offset {offset_of(first_bad)}) "
                                           "cannot be read (")  # then TensorFlow's words: truncated or corrupted
        assert "--bad_records=skip" in str(error.value)
    elif nothing_readable:  # no good record left for the pipeline that reads this file
        with pytest.raises(BadRecordError, match=f"^no file holds a readable record: {re.escape(path)} "):
            read_like_a_run(files, bad_records)
    else:
        assert read_like_a_run(files, bad_records) == expected_ids(num_files, damaged, readable)
        count = 0 if first_bad is None else 1
        assert (bad_records.count, len(bad_records.excluded)) == (count, count)
        if count:
            assert any(line.startswith(f"skipping: {path}: record {first_bad} ") for line in lines), lines


def test_start_up_check_of_a_damaged_first_file_moves_on_under_skip_only(tmp_path):
    """The issue's case: the start-up check reads the first file, whose first record is corrupt."""
    files = write_files(str(tmp_path), 3, 0, flip_payload_byte)
    with pytest.raises(BadRecordError, match=f"^{re.escape(files[0])}: record 0 \\(byte offset 0\\) cannot be read "
                                             r"\(corrupted record at 12\).*The input pipeline's start-up check"):
        records.check_first_records(files, T)
    lines = []
    bad_records = BadRecordTracker("skip", report=lines.append)
    assert records.check_first_records(files, T, bad_records) == files[1]
    assert bad_records.summary() == "skipped 1 bad record(s) in 1 file(s)"
    assert lines == [f"skipping: {files[0]}: record 0 (byte offset 0) cannot be read (corrupted record at 12); "
                     "the file is truncated or corrupt from here on"]
    assert records.check_first_records(files, T, bad_records) == files[1]  # not scanned again
    assert len(lines) == 1


def test_empty_files_are_passed_over_and_none_readable_is_an_error(tmp_path):
    files = write_files(str(tmp_path), 3, 0, zero_length)
    open(files[1], "wb").close()
    assert records.check_first_records(files, T) == files[2]
    with pytest.raises(BadRecordError, match=f"^no file holds a readable record: {re.escape(files[0])} and 1 more "
                                             r"file\(s\) "
                                             r"\(2 empty or too short, 0 with bad records\)"):
        records.check_first_records(files[:2], T)


def test_each_input_pipeline_checks_its_own_files(tmp_path):
    """Two pipelines over four files: pipeline 1 reads files 1 and 3. A corrupt file 1 stops it
    (fail) or is left out (skip) while pipeline 0 never reads it."""
    files = write_files(str(tmp_path), 4, 1, flip_payload_byte)
    contexts = [tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=i, num_replicas_in_sync=2)
                for i in range(2)]
    assert input_pipeline.pipeline_files(files, contexts[1]) == [files[1], files[3]]
    fail = BadRecordTracker("fail")
    first = [int(b["input_ids"][0, 0]) for b in input_pipeline.pretraining_dataset(
        files, 1, T, is_training=False, input_context=contexts[0], bad_records=fail)]
    assert sorted(first) == [1000 + i for i in range(6)] + [3000 + i for i in range(6)] and not fail.scanned
    with pytest.raises(BadRecordError, match=f"^{re.escape(files[1])}: record 0 "):
        input_pipeline.pretraining_dataset(files, 1, T, is_training=False, input_context=contexts[1],
                                           bad_records=fail)
    skip = BadRecordTracker("skip", report=lambda line: None)
    second = [int(b["input_ids"][0, 0]) for b in input_pipeline.pretraining_dataset(
        files, 1, T, is_training=False, input_context=contexts[1], bad_records=skip)]
    assert sorted(second) == [4000 + i for i in range(6)] and skip.count == 1


def test_pipelines_that_split_records_need_enough_of_them(tmp_path):
    """One file of one record, two pipelines splitting each file's records: pipeline 1 would read
    nothing (and a training pipeline, which repeats, would wait forever): an error names the file."""
    path = str(tmp_path / "one.tfrecord")
    with tf.io.TFRecordWriter(path) as writer:
        writer.write(record(0, 0))
    context = tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=1, num_replicas_in_sync=2)
    with pytest.raises(BadRecordError, match=f"^no file holds 2 readable records .*: {re.escape(path)} "):
        input_pipeline.pretraining_dataset(path, 1, T, is_training=True, input_context=context)
