"""Tests of the pretraining TFRecord input pipeline (the original's `pretrain_data.get_input_fn`) on
tiny files written here."""

import numpy as np
import pytest
import tensorflow as tf

from convbert_tf.pretraining.input_pipeline import expand_file_patterns, pretraining_dataset
from convbert_tf.pretraining.records import check_first_records
from convbert_tf.pretraining.masking import mask_tokens

T = 8
KEYS = ("input_ids", "input_mask", "segment_ids")


def make_rows(first_id, count, length=T):
    """Records whose input_ids start with a unique id, so each can be identified."""
    rows = []
    for i in range(count):
        real = 3 + (first_id + i) % (length - 2)
        ids = np.zeros(length, np.int64)
        ids[:real] = np.arange(real) + 1000 * (first_id + i)
        mask = (ids != 0).astype(np.int64)
        segments = np.zeros(length, np.int64)
        segments[real // 2: real] = 1
        rows.append({"input_ids": ids, "input_mask": mask, "segment_ids": segments})
    return rows


def write_records(path, rows):
    with tf.io.TFRecordWriter(str(path)) as writer:
        for row in rows:
            feature = {k: tf.train.Feature(int64_list=tf.train.Int64List(value=row[k]))
                       for k in KEYS}
            writer.write(tf.train.Example(
                features=tf.train.Features(feature=feature)).SerializeToString())
    return str(path)


def write_files(tmp_path, num_files, per_file, prefix="pretrain_data.tfrecord"):
    rows = {}
    for f in range(num_files):
        file_rows = make_rows(first_id=100 * f + 1, count=per_file)
        write_records(tmp_path / f"{prefix}-{f}-of-{num_files}", file_rows)
        rows.update({int(r["input_ids"][0]): r for r in file_rows})
    return rows


def record_keys(dataset, limit=None):
    """The first input_id of every example read (its identity)."""
    keys = []
    for batch in dataset.take(limit) if limit else dataset:
        keys.extend(batch["input_ids"][:, 0].numpy().tolist())
    return keys


def test_exact_content_static_shapes_and_drop_remainder(tmp_path):
    rows = make_rows(first_id=1, count=10)
    path = write_records(tmp_path / "data.tfrecord", rows)
    dataset = pretraining_dataset(path, batch_size=4, max_seq_length=T, is_training=False)
    for key in KEYS:
        assert dataset.element_spec[key].shape.as_list() == [4, T]
        assert dataset.element_spec[key].dtype == tf.int32
    batches = list(dataset)
    assert len(batches) == 2  # 10 records, batch 4: the last 2 are dropped
    for b, batch in enumerate(batches):
        for key in KEYS:
            want = np.stack([r[key] for r in rows[4 * b: 4 * b + 4]])
            np.testing.assert_array_equal(batch[key].numpy(), want)


def test_comma_patterns_and_every_record_once(tmp_path):
    rows = write_files(tmp_path, num_files=3, per_file=5)
    write_records(tmp_path / "other.tfrecord", make_rows(first_id=900, count=2))
    rows.update({900 * 1000 + 1000 * i: r for i, r in
                 enumerate(make_rows(first_id=900, count=2))})
    patterns = f"{tmp_path}/pretrain_data.tfrecord*, {tmp_path}/other.tfrecord"
    assert len(expand_file_patterns(patterns)) == 4
    assert expand_file_patterns([patterns]) == expand_file_patterns(patterns)
    keys = record_keys(pretraining_dataset(patterns, 1, T, is_training=False))
    assert sorted(keys) == sorted(rows)


def test_training_repeats_and_shuffles(tmp_path):
    rows = write_files(tmp_path, num_files=2, per_file=6)
    pattern = f"{tmp_path}/pretrain_data.tfrecord*"
    dataset = pretraining_dataset(pattern, 4, T, is_training=True, seed=1)
    assert dataset.element_spec["input_ids"].shape.as_list() == [4, T]
    keys = record_keys(dataset, limit=12)  # 48 examples from 12 records: it repeats
    assert set(keys) == set(rows)
    again = record_keys(pretraining_dataset(pattern, 4, T, is_training=True, seed=1), 12)
    assert keys == again  # a seed makes it deterministic
    assert keys[:12] != sorted(keys[:12])


@pytest.mark.parametrize("num_files", [4, 1])  # shard files; too few files: shard records
def test_sharding_with_input_context_is_disjoint(tmp_path, num_files):
    rows = write_files(tmp_path, num_files=num_files, per_file=6)
    pattern = f"{tmp_path}/pretrain_data.tfrecord*"
    seen = []
    for pipeline_id in range(2):
        context = tf.distribute.InputContext(num_input_pipelines=2,
                                             input_pipeline_id=pipeline_id,
                                             num_replicas_in_sync=2)
        seen.append(record_keys(pretraining_dataset(pattern, 1, T, is_training=False,
                                                    input_context=context)))
    assert not set(seen[0]) & set(seen[1])
    assert sorted(seen[0] + seen[1]) == sorted(rows)
    assert len(seen[0]) == len(seen[1]) == len(rows) // 2


def test_wrong_length_names_file_and_both_lengths(tmp_path):
    path = write_records(tmp_path / "short.tfrecord", make_rows(1, 3, length=6))
    with pytest.raises(ValueError, match=r"short\.tfrecord.*length 6.*max_seq_length is 8"):
        pretraining_dataset(path, 2, T, is_training=True)
    with pytest.raises(ValueError, match="length 6.*set max_seq_length to 6"):
        check_first_records([path], 8)
    assert check_first_records([path], 6) == path


def test_no_files_names_the_patterns(tmp_path):
    pattern = f"{tmp_path}/missing-*.tfrecord"
    with pytest.raises(ValueError, match="missing-"):
        pretraining_dataset(pattern, 2, T, is_training=True)


def test_mask_fn_in_the_pipeline(tmp_path):
    write_files(tmp_path, num_files=2, per_file=8)
    pattern = f"{tmp_path}/pretrain_data.tfrecord*"

    def mask_fn(features, seed):
        return mask_tokens(features["input_ids"], features["input_mask"], mask_id=3,
                           special_ids=(1, 2, 3), seed=seed, max_predictions_per_seq=2)

    def read():
        dataset = pretraining_dataset(pattern, 4, T, is_training=False, seed=5, mask_fn=mask_fn)
        return [{k: v.numpy() for k, v in batch.items()} for batch in dataset]

    first, second = read(), read()
    assert len(first) == 4
    assert first[0]["masked_lm_positions"].shape == (4, 2)
    assert first[0]["masked_input_ids"].shape == (4, T)
    for a, b in zip(first, second):  # same seed, same masks
        for key in a:
            np.testing.assert_array_equal(a[key], b[key])
    # distinct batches get distinct masking seeds: the masks are not all the same pattern
    patterns = {tuple(batch["masked_lm_positions"].ravel()) for batch in first}
    assert len(patterns) > 1
