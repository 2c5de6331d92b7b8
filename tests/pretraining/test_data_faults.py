"""Data faults: corrupt, truncated and misshapen TFRecords fail with the file and record, or are
skipped and counted, in the pipeline, a training run, the script and a two-worker run. (The
model_dir guards are tested in tests/test_run_guard.py.)"""

import io
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from convbert_tf.config import ConfigError
from convbert_tf.pretraining import input_pipeline
from convbert_tf.pretraining import run as trainer
from convbert_tf.pretraining import records as record_files
from convbert_tf.pretraining.hparams import resolve_hparams
from convbert_tf.run_guard import LOCK_FILENAME
from pretraining_data import SEQ_LENGTH, TINY_HPARAMS, example, write_data_dir
from repo_paths import ROOT

CPU = tf.distribute.OneDeviceStrategy("/cpu:0")
T = 8
FRAMING = 16  # bytes around each TFRecord's data: length, length CRC, data CRC


def serialized(first_id, length=T, drop=None):
    """One record whose input_ids start with `first_id`; `drop` leaves a feature out."""
    proto = example([first_id] + [7] * 3, length)
    if drop:
        del proto.features.feature[drop]
    return proto.SerializeToString()


def write(path, records):
    with tf.io.TFRecordWriter(str(path)) as writer:
        for record in records:
            writer.write(record)
    return str(path)


def offset_of(records, index):
    return sum(len(r) + FRAMING for r in records[:index])


def flip_byte(path, position):
    data = bytearray(open(path, "rb").read())
    data[position] ^= 0x40
    open(path, "wb").write(bytes(data))


def good_records(count, start=1):
    return [serialized(start + i) for i in range(count)]


# ----- locating bad records -----------------------------------------------------------------------
def test_scan_names_misshapen_truncated_and_corrupt_records_with_their_offsets(tmp_path):
    records = good_records(10)
    records[3] = serialized(100, length=6)  # wrong length
    records[7] = serialized(200, drop="segment_ids")  # a missing feature
    misshapen = write(tmp_path / "misshapen.tfrecord", records)
    bad = record_files.scan_file(misshapen, T)
    assert (bad.readable, bad.unparseable, bad.framing_error, bad.count) == (10, (3, 7), None, 2)
    message = record_files.describe_bad_records(bad, T)
    assert message.startswith(f"{misshapen}: record 3 (byte offset {offset_of(records, 3)}) has feature "
                              "'input_ids' of length 6, but max_seq_length is 8")
    assert "1 more bad record" in message

    good = good_records(10)
    truncated = write(tmp_path / "truncated.tfrecord", good)
    with open(truncated, "r+b") as f:
        f.truncate(os.path.getsize(truncated) - 5)  # the last record loses its tail
    bad = record_files.scan_file(truncated, T)
    assert (bad.readable, bad.unparseable, bad.count) == (9, (), 1)
    assert f"{truncated}: record 9 (byte offset {offset_of(good, 9)}) cannot be read (truncated record" \
        in record_files.describe_bad_records(bad, T)

    corrupt = write(tmp_path / "corrupt.tfrecord", good)
    flip_byte(corrupt, offset_of(good, 4) + 12 + 5)  # inside record 4's data: its CRC no longer matches
    bad = record_files.scan_file(corrupt, T)
    assert (bad.readable, bad.unparseable) == (4, ())
    assert re.match(rf"{re.escape(corrupt)}: record 4 \(byte offset {offset_of(good, 4)}\) cannot be read "
                    r"\(corrupted record", record_files.describe_bad_records(bad, T))

    garbage = write(tmp_path / "garbage.tfrecord", [b"\xff\x00 not a proto"] + good_records(2))
    bad = record_files.scan_file(garbage, T)
    assert bad.unparseable == (0,)
    assert "is not a serialized tf.train.Example" in record_files.describe_bad_records(bad, T)

    assert record_files.scan_file(write(tmp_path / "good.tfrecord", good), T) is None
    found = record_files.find_bad_records([str(tmp_path / "good.tfrecord"), misshapen, truncated], T,
                                            first_only=True)
    assert [b.path for b in found] == [misshapen]


def test_pipeline_leaves_out_exactly_the_bad_records(tmp_path):
    records = good_records(10, start=10)
    records[2] = serialized(999, length=5)
    files = [write(tmp_path / "a.tfrecord", records), write(tmp_path / "b.tfrecord", good_records(10, start=30))]
    flip_byte(files[1], offset_of(good_records(10, start=30), 6) + 14)  # record 6 of b is corrupt
    with pytest.raises(tf.errors.OpError):  # without exclusions the pipeline fails
        list(input_pipeline.pretraining_dataset(files, 1, T, is_training=False))
    bad_records = record_files.BadRecordTracker("skip")
    found = record_files.find_bad_records(files, T, first_only=False, scanned=bad_records.scanned)
    assert [b.path for b in found] == files
    dataset = input_pipeline.pretraining_dataset(files, 1, T, is_training=False, bad_records=bad_records)
    read = sorted(int(batch["input_ids"][0, 0]) for batch in dataset)
    assert read == [i for i in range(10, 20) if i != 12] + list(range(30, 36))


# ----- pretraining with bad records ---------------------------------------------------------------
@pytest.fixture(scope="module")
def damaged_data_dir(tmp_path_factory):
    """Two files: the first (the training file) has a misshapen record 10 and a truncated end."""
    data_dir = write_data_dir(str(tmp_path_factory.mktemp("damaged")), num_files=2, records_per_file=64)
    train_file = os.path.join(data_dir, "pretrain_tfrecords", "pretrain_data.tfrecord-0-of-2")
    records = [bytes(r.numpy()) for r in tf.data.TFRecordDataset(train_file)]
    records[10] = example([2, 5, 5, 3], SEQ_LENGTH - 1).SerializeToString()
    write(train_file, records)
    with open(train_file, "r+b") as f:
        f.truncate(os.path.getsize(train_file) - 3)
    return data_dir, train_file, offset_of(records, 10)


def tiny(data_dir, name, **changes):
    values = dict(TINY_HPARAMS, num_train_steps=2, iterations_per_loop=1, save_checkpoints_steps=2, **changes)
    return resolve_hparams(values, data_dir=data_dir, model_name=name)


def pipeline_error(files):
    """The error the input pipeline raises on these files."""
    with pytest.raises(tf.errors.OpError) as error:
        list(input_pipeline.pretraining_dataset(files, 8, SEQ_LENGTH, is_training=False))
    return error.value


def test_locating_a_pipeline_error_names_the_record_or_excludes_it(damaged_data_dir, tmp_path):
    data_dir, train_file, offset = damaged_data_dir
    error = pipeline_error([train_file])
    logs = []
    with pytest.raises(record_files.BadRecordError, match=re.escape(
            f"{train_file}: record 10 (byte offset {offset}) has feature 'input_ids' of length {SEQ_LENGTH - 1}")
            + ".*Training stopped at step 3.*--bad_records=skip"):
        record_files.BadRecordTracker("fail", logs.append).locate([train_file], SEQ_LENGTH, error,
                                                                    "Training stopped at step 3")

    bad_records = record_files.BadRecordTracker("skip", logs.append)
    good_file = write(tmp_path / "good.tfrecord", [example([2, 5, 3], SEQ_LENGTH).SerializeToString()] * 3)
    bad_records.locate([good_file, train_file], SEQ_LENGTH, error, "")
    assert list(bad_records.excluded) == [train_file] and bad_records.scanned[good_file] is None
    assert (bad_records.excluded[train_file].readable, bad_records.excluded[train_file].unparseable) == (63, (10,))
    assert logs[-1].startswith(f"skipping: {train_file}: record 10")
    assert bad_records.summary() == "skipped 2 bad record(s) in 1 file(s)"  # the misshapen record, the cut tail
    with pytest.raises(tf.errors.OpError):  # nothing new to exclude: the error is not about these records
        bad_records.locate([good_file, train_file], SEQ_LENGTH, error, "")

    hopeless = write(tmp_path / "hopeless.tfrecord", [b"\xff\x00 not a proto"] * 4)
    with pytest.raises(record_files.BadRecordError, match="^no file holds a readable record: .*hopeless.tfrecord "
                                                            r"\(0 empty or too short, 1 with bad records\)"):
        input_pipeline.pretraining_dataset(hopeless, 1, SEQ_LENGTH, is_training=True, bad_records=bad_records)


@pytest.mark.slow  # an in-process training run: 10-20 s
def test_bad_record_stops_training_naming_file_record_and_offset(damaged_data_dir):
    data_dir, train_file, offset = damaged_data_dir
    hp = tiny(data_dir, "fails")
    with pytest.raises(record_files.BadRecordError) as error:
        trainer.train(hp, CPU, out=io.StringIO())
    message = str(error.value)
    assert message.startswith(f"{train_file}: record 10 (byte offset {offset}) has feature 'input_ids' of length "
                              f"{SEQ_LENGTH - 1}, but max_seq_length is {SEQ_LENGTH}")
    assert "1 more bad record" in message and "--bad_records=skip" in message
    assert re.search(r"Training stopped at step \d; the last checkpoint is none yet", message)
    assert not os.path.exists(os.path.join(hp.model_dir, LOCK_FILENAME))


@pytest.mark.slow  # an in-process training run: 10-20 s
def test_skip_mode_trains_past_bad_records_and_counts_them(damaged_data_dir):
    data_dir, train_file, _ = damaged_data_dir
    out = io.StringIO()
    result = trainer.train(tiny(data_dir, "skips", bad_records="skip"), CPU, out=out)
    log = out.getvalue()
    assert result["step"] == 2 and np.isfinite(result["total_loss"])
    assert result["bad_records"] == 2  # the misshapen record and the truncated tail
    assert f"skipping: {train_file}: record 10" in log
    assert re.search(r"^step 2/2 .*\| bad records 2$", log, flags=re.M), log
    assert "skipped 2 bad record(s) in 1 file(s)" in log


def test_bad_records_hparam_is_checked():
    with pytest.raises(ConfigError, match="bad_records is 'ignore'; use one of \\['fail', 'skip'\\]"):
        resolve_hparams(dict(TINY_HPARAMS, bad_records="ignore"), data_dir="/tmp", model_name="x")


@pytest.fixture(scope="module")
def first_shard_damaged(tmp_path_factory):
    """Three files, each damaged: the first has a flipped byte in record 0's data (the start-up
    check reads it), the second a misshapen record 2 and a cut in record 5 (the training reader
    meets them in its first batch), the third (held out for eval) a flipped byte in record 40's
    length field."""
    data_dir = write_data_dir(str(tmp_path_factory.mktemp("first_shard")), num_files=3, records_per_file=64)
    files = [os.path.join(data_dir, "pretrain_tfrecords", f"pretrain_data.tfrecord-{i}-of-3") for i in range(3)]
    records = [[bytes(r.numpy()) for r in tf.data.TFRecordDataset(f)] for f in files]
    flip_byte(files[0], 12 + 5)
    records[1][2] = example([2, 5, 5, 3], SEQ_LENGTH - 1).SerializeToString()
    write(files[1], records[1])
    with open(files[1], "r+b") as f:
        f.truncate(offset_of(records[1], 5) + 20)
    flip_byte(files[2], offset_of(records[2], 40) + 1)
    return data_dir, files, offset_of(records[2], 40)


def run_script(data_dir, model_name, *flags, **hparams):
    hparams = json.dumps(dict(TINY_HPARAMS, num_train_steps=2, iterations_per_loop=1, **hparams))
    command = [sys.executable, "run_pretraining.py", f"--data_dir={data_dir}", f"--model_name={model_name}",
               f"--hparams={hparams}", *flags]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))


@pytest.mark.slow  # four runs of the script: a minute
def test_script_stops_at_a_damaged_first_shard_or_skips_it_and_evaluates_past_a_damaged_eval_file(
        first_shard_damaged):
    data_dir, files, eval_offset = first_shard_damaged
    failed = run_script(data_dir, "script_fails")
    assert failed.returncode == 1 and "Traceback" not in failed.stderr
    assert (f"run_pretraining.py: error: {files[0]}: record 0 (byte offset 0) cannot be read (corrupted record at "
            "12); the file is truncated or corrupt from here on. The start-up check found it before training. "
            "Rebuild or remove that file, or pass --bad_records=skip") in failed.stderr

    skipped = run_script(data_dir, "script_skips", "--bad_records=skip")
    assert skipped.returncode == 0, skipped.stderr[-3000:]
    assert f"skipping: {files[0]}: record 0 (byte offset 0) cannot be read" in skipped.stdout
    assert f"skipping: {files[1]}: record 2 " in skipped.stdout
    assert "skipped 3 bad record(s) in 2 file(s)" in skipped.stdout  # record 0 of one, record 2 and the cut

    evaluation = dict(do_train=False, do_eval=True, num_eval_steps=100)
    failed = run_script(data_dir, "script_skips", **evaluation)
    assert failed.returncode == 1 and "Traceback" not in failed.stderr
    assert (f"run_pretraining.py: error: {files[2]}: record 40 (byte offset {eval_offset}) cannot be read "
            "(corrupted record at") in failed.stderr
    assert "Evaluation stopped after 5 batches" in failed.stderr
    skipped = run_script(data_dir, "script_skips", "--bad_records=skip", **evaluation)
    assert skipped.returncode == 0, skipped.stderr[-3000:]
    assert "eval: skipped 1 bad record(s) in 1 file(s)" in skipped.stdout
    assert "eval_batches 5," in skipped.stdout  # the 40 records before the damage, in batches of 8


@pytest.mark.slow  # a two-worker cluster: a minute
def test_each_worker_skips_the_bad_records_it_reads_and_keeps_in_step(tmp_path):
    """Two workers, one training file each: only worker 1 reads the misshapen record. It skips it
    between two steps (the others wait in the next step's collectives) and the run finishes."""
    from tests.training.test_multi_worker import Cluster, _read, _wait_all

    data_dir = write_data_dir(str(tmp_path / "data"), num_files=3, records_per_file=64)
    damaged = os.path.join(data_dir, "pretrain_tfrecords", "pretrain_data.tfrecord-1-of-3")
    records = [bytes(r.numpy()) for r in tf.data.TFRecordDataset(damaged)]
    records[20] = example([2, 5, 5, 3], SEQ_LENGTH - 1).SerializeToString()
    write(damaged, records)
    hparams = dict(TINY_HPARAMS, num_train_steps=6, iterations_per_loop=2, train_batch_size=16, bad_records="skip")
    cluster = Cluster(str(tmp_path), data_dir, 2, hparams, "two_skip")
    procs, stems = cluster.start()
    _wait_all(procs, timeout=400)
    for p, stem in zip(procs, stems):
        assert p.returncode == 0, _read(stem + ".err")[-3000:]
    assert os.path.basename(tf.train.latest_checkpoint(cluster.model_dir)) == "ckpt-6"
    worker_1 = _read(stems[1] + ".out")
    assert f"worker 1: skipping: {damaged}: record 20 (byte offset {offset_of(records, 20)})" in worker_1
    assert "worker 1: skipped 1 bad record(s) in 1 file(s)" in worker_1
    assert "skipping" not in _read(stems[0] + ".out")
