"""The pretraining input pipeline: TFRecords of tf.train.Example -> batches of int32 [B, T].

Legend:
    B  per-replica batch size
    T  max_seq_length (the length every record was written with)

Reference: `pretrain/pretrain_data.py` of yitu-opensource/ConvBert (as in google-research/electra),
`get_input_fn`: records are three int64 FixedLenFeature[T] (input_ids, input_mask, segment_ids);
masking is dynamic, so it is not stored.
"""

from __future__ import annotations

import random
from typing import Callable, Mapping, Sequence

import tensorflow as tf

from convbert_tf.pretraining.records import FEATURE_KEYS, BadRecordTracker, check_first_records

MaskFn = Callable[[Mapping[str, tf.Tensor], tf.Tensor], Mapping[str, tf.Tensor]]


def expand_file_patterns(file_patterns: str | Sequence[str]) -> list[str]:
    """Globs comma-separated patterns (a string) or a list of patterns into sorted files.

    Raises:
        ValueError: naming the patterns, when nothing matches.
    """
    if isinstance(file_patterns, str):
        patterns = [p.strip() for p in file_patterns.split(",")]
    else:
        patterns = [p.strip() for item in file_patterns for p in str(item).split(",")]
    patterns = [p for p in patterns if p]
    files = sorted({f for p in patterns for f in tf.io.gfile.glob(p)})
    if not files:
        raise ValueError(
            f"pretraining_dataset: no files match the pattern(s) {patterns}; check the "
            "path (e.g. $DATA_DIR/pretrain_tfrecords/pretrain_data.tfrecord*)."
        )
    return files


def pipeline_files(files: Sequence[str], input_context: tf.distribute.InputContext | None) -> list[str]:
    """The files one input pipeline reads: every num_pipelines-th from its id on when there are at
    least as many files as pipelines; otherwise all of them (the pipelines then split the records)."""
    if input_context is None or len(files) < input_context.num_input_pipelines:
        return list(files)
    return list(files[input_context.input_pipeline_id::input_context.num_input_pipelines])


def _without_bad_records(records: tf.data.Dataset, file_id: tf.Tensor, readable: tf.Tensor,
                         bad_keys: tf.Tensor) -> tf.data.Dataset:
    """The readable records of one file minus its unparseable ones.

    `bad_keys` is sorted int64 [K] of file_id * 2^40 + record index; `readable` -1 means all.
    """
    records = records.take(readable)
    if bad_keys.shape[0] == 0:
        return records
    num_keys = tf.size(bad_keys, out_type=tf.int64)

    def keep(index, record):
        del record
        key = file_id * (1 << 40) + index
        position = tf.searchsorted(bad_keys, tf.reshape(key, [1]), out_type=tf.int64)[0]
        is_bad = tf.logical_and(position < num_keys, tf.gather(bad_keys, tf.minimum(position, num_keys - 1)) == key)
        return tf.logical_not(is_bad)

    return records.enumerate().filter(keep).map(lambda index, record: record)


def _parse_batch(serialized: tf.Tensor, max_seq_length: int) -> dict[str, tf.Tensor]:
    """[B] serialized examples -> dict of int32 [B, T]."""
    spec = {key: tf.io.FixedLenFeature([max_seq_length], tf.int64) for key in FEATURE_KEYS}
    parsed = tf.io.parse_example(serialized, spec)  # each [B, T] int64
    return {key: tf.cast(parsed[key], tf.int32) for key in FEATURE_KEYS}  # each [B, T]


def _bad_record_keys(files: Sequence[str], exclude: Mapping) -> tf.Tensor:
    """The unparseable records to leave out, as int64 keys file_index * 2^40 + record_index, [K]."""
    bad_keys = tf.constant(sorted(i * (1 << 40) + r for i, f in enumerate(files) if f in exclude
                                  for r in exclude[f].unparseable), tf.int64, shape=None)
    return tf.reshape(bad_keys, [-1])


def _file_dataset(files: Sequence[str], exclude: Mapping, *, num_files: int, num_pipelines: int, pipeline_id: int,
                  shard_files: bool, is_training: bool, seed: int | None) -> tf.data.Dataset:
    """(path, file index, readable records or -1 for all) of this pipeline's files; shuffled and
    repeated when training."""
    readable = [exclude[f].readable if f in exclude else -1 for f in files]  # -1: every record
    dataset = tf.data.Dataset.from_tensor_slices((files, tf.range(len(files), dtype=tf.int64),
                                                  tf.constant(readable, tf.int64)))
    if num_pipelines > 1 and shard_files:
        dataset = dataset.shard(num_pipelines, pipeline_id)
    if is_training:
        dataset = dataset.shuffle(num_files, seed=seed, reshuffle_each_iteration=True)
        dataset = dataset.repeat()
    return dataset


def _with_masking(dataset: tf.data.Dataset, mask_fn: MaskFn, seed: int | None, pipeline_id: int,
                  deterministic: bool) -> tf.data.Dataset:
    """Adds `mask_fn`'s outputs to each batch, with a seed per batch from `seed`, the pipeline and
    the batch index."""
    base_seed = tf.constant(
        [seed if seed is not None else random.randrange(2**31), pipeline_id], tf.int64
    )

    def add_masking(batch_index, features):
        batch_seed = tf.random.experimental.stateless_fold_in(base_seed, batch_index)
        features = dict(features)
        features.update(mask_fn(features, batch_seed))
        return features

    return dataset.enumerate().map(add_masking, num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic)


def pretraining_dataset(
    file_patterns: str | Sequence[str],
    batch_size: int,
    max_seq_length: int,
    *,
    is_training: bool,
    input_context: tf.distribute.InputContext | None = None,
    seed: int | None = None,
    shuffle_buffer: int = 100,
    cycle_length: int = 4,
    mask_fn: MaskFn | None = None,
    bad_records: BadRecordTracker | None = None,
) -> tf.data.Dataset:
    """Batches of pretraining features, as the original's `pretrain_data.get_input_fn`.

    Steps: glob the patterns; run the start-up check (`check_first_records`) on this
    pipeline's files, eagerly; shard across input pipelines (by file when every pipeline
    gets at least one file, otherwise every pipeline reads every file and keeps records
    i ≡ pipeline_id mod num_pipelines of each);
    when training, shuffle and repeat the file list; interleave up to `cycle_length`
    files; when training, shuffle `shuffle_buffer` records; batch with drop_remainder;
    parse; cast int64 -> int32; optionally mask.

    Use with `strategy.distribute_datasets_from_function(lambda ctx:
    pretraining_dataset(..., input_context=ctx))`; `batch_size` is per replica.

    Determinism: with a `seed` the shuffles and the interleave order are deterministic;
    without one, training interleaves "sloppily" (in whatever order files deliver), as
    the original did.

    Args:
        file_patterns: a string of comma-separated glob patterns, or a list of them.
        batch_size: B, examples per batch (per replica).
        max_seq_length: T; every record must have been written with this length.
        is_training: repeat forever and shuffle (files and records) when True; read each
            record once in file order otherwise.
        input_context: from `tf.distribute`; None for a single pipeline.
        seed: seed of the shuffles and of the masking seeds.
        shuffle_buffer: record shuffle buffer when training (the original's 100).
        cycle_length: files read at once (the original's min(4, #files)).
        mask_fn: optional `mask_fn(features, seed) -> dict`, applied to each batch with a
            distinct [2] int64 seed per batch (derived from `seed`, the pipeline id and the
            batch index); its outputs are added to the features. For example
            `lambda f, s: mask_tokens(f["input_ids"], f["input_mask"], mask_id=103,
            special_ids=(101, 102, 103), seed=s)`.
        bad_records: the run's bad-record handling (a new "fail" one if None), used by the
            start-up check; the bad records it holds are left out (a file is read up to its
            framing error, without its unparseable records). Other files are read as they
            are: a bad record there makes the iterator raise DataLossError (framing) or
            InvalidArgumentError (parsing); `BadRecordTracker.locate` then finds it.

    Returns:
        A `tf.data.Dataset` of dicts with `input_ids`, `input_mask`, `segment_ids`, each
        int32 [B, T] with static shape (plus `mask_fn`'s outputs).

    Raises:
        ValueError: no file matches (naming the patterns); the records have another length
            than max_seq_length (naming the file and both lengths).
        BadRecordError: from the start-up check (see `check_first_records`).
    """
    if batch_size < 1 or max_seq_length < 1:
        raise ValueError(
            f"pretraining_dataset: batch_size and max_seq_length must be >= 1, got "
            f"batch_size={batch_size}, max_seq_length={max_seq_length}."
        )
    files = expand_file_patterns(file_patterns)
    num_pipelines = input_context.num_input_pipelines if input_context else 1
    pipeline_id = input_context.input_pipeline_id if input_context else 0
    shard_files = len(files) >= num_pipelines
    bad_records = bad_records if bad_records is not None else BadRecordTracker()
    check_first_records(pipeline_files(files, input_context), max_seq_length, bad_records,
                        count=1 if shard_files else pipeline_id + 1)
    exclude = bad_records.excluded
    deterministic = seed is not None or not is_training

    bad_keys = _bad_record_keys(files, exclude)
    num_files = len(pipeline_files(files, input_context))
    dataset = _file_dataset(files, exclude, num_files=num_files, num_pipelines=num_pipelines,
                            pipeline_id=pipeline_id, shard_files=shard_files, is_training=is_training, seed=seed)

    def read_file(path, file_id, readable_records):
        records = tf.data.TFRecordDataset(path)
        if exclude:
            records = _without_bad_records(records, file_id, readable_records, bad_keys)
        if num_pipelines > 1 and not shard_files:
            records = records.shard(num_pipelines, pipeline_id)
        return records

    dataset = dataset.interleave(
        read_file,
        cycle_length=max(1, min(cycle_length, num_files)),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=deterministic,
    )
    if is_training:
        dataset = dataset.shuffle(shuffle_buffer, seed=seed)
    dataset = dataset.batch(batch_size, drop_remainder=True)
    dataset = dataset.map(
        lambda serialized: _parse_batch(serialized, max_seq_length),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=deterministic,
    )
    if mask_fn is not None:
        dataset = _with_masking(dataset, mask_fn, seed, pipeline_id, deterministic)
    return dataset.prefetch(tf.data.AUTOTUNE)
