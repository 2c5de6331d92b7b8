"""The pretraining input pipeline: TFRecords of tf.train.Example -> batches of int32 [B, T].

Legend:
    B  per-replica batch size
    T  max_seq_length (the length every record was written with)

Reference: the original release's `pretrain/pretrain_data.py`, `original_release.md` §4.1
(records are three int64 FixedLenFeature[T]: input_ids, input_mask, segment_ids; masking is
dynamic, so it is not stored).
"""

from __future__ import annotations

import random
from typing import Callable, Mapping, Sequence

import tensorflow as tf

FEATURE_KEYS = ("input_ids", "input_mask", "segment_ids")

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


def check_record_length(path: str, max_seq_length: int) -> None:
    """Reads the first record of `path` and checks its three features have length T.

    An empty file passes (there is nothing to check).

    Raises:
        ValueError: naming the file, the feature, the length found and the expected
            max_seq_length, when a feature is missing or has another length.
    """
    for serialized in tf.data.TFRecordDataset(path).take(1):
        example = tf.train.Example.FromString(serialized.numpy())
        features = example.features.feature
        for key in FEATURE_KEYS:
            if key not in features:
                raise ValueError(
                    f"{path}: the first record has no feature {key!r} (it has "
                    f"{sorted(features)}); pretraining records need {list(FEATURE_KEYS)}."
                )
            found = len(features[key].int64_list.value)
            if found != max_seq_length:
                raise ValueError(
                    f"{path}: feature {key!r} of the first record has length {found}, but "
                    f"max_seq_length is {max_seq_length}; rebuild the records with "
                    f"--max-seq-length {max_seq_length} or set max_seq_length={found}."
                )


def _parse_batch(serialized: tf.Tensor, max_seq_length: int) -> dict[str, tf.Tensor]:
    """[B] serialized examples -> dict of int32 [B, T]."""
    spec = {key: tf.io.FixedLenFeature([max_seq_length], tf.int64) for key in FEATURE_KEYS}
    parsed = tf.io.parse_example(serialized, spec)  # each [B, T] int64
    return {key: tf.cast(parsed[key], tf.int32) for key in FEATURE_KEYS}  # each [B, T]


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
) -> tf.data.Dataset:
    """Batches of pretraining features, as the original's input function (§4.1).

    Steps: glob the patterns; check the first record's length eagerly; shard across input
    pipelines (by file when every pipeline gets at least one file, otherwise every
    pipeline reads every file and keeps records i ≡ pipeline_id mod num_pipelines of each);
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

    Returns:
        A `tf.data.Dataset` of dicts with `input_ids`, `input_mask`, `segment_ids`, each
        int32 [B, T] with static shape (plus `mask_fn`'s outputs).

    Raises:
        ValueError: no file matches (naming the patterns); the first record has another
            length than max_seq_length (naming the file and both lengths).
    """
    if batch_size < 1 or max_seq_length < 1:
        raise ValueError(
            f"pretraining_dataset: batch_size and max_seq_length must be >= 1, got "
            f"batch_size={batch_size}, max_seq_length={max_seq_length}."
        )
    files = expand_file_patterns(file_patterns)
    check_record_length(files[0], max_seq_length)

    num_pipelines = input_context.num_input_pipelines if input_context else 1
    pipeline_id = input_context.input_pipeline_id if input_context else 0
    shard_files = len(files) >= num_pipelines
    deterministic = seed is not None or not is_training

    dataset = tf.data.Dataset.from_tensor_slices(files)
    num_files = len(files)
    if num_pipelines > 1 and shard_files:
        dataset = dataset.shard(num_pipelines, pipeline_id)
        num_files = len(files[pipeline_id::num_pipelines])
    if is_training:
        dataset = dataset.shuffle(num_files, seed=seed, reshuffle_each_iteration=True)
        dataset = dataset.repeat()

    def read_file(path):
        records = tf.data.TFRecordDataset(path)
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
        base_seed = tf.constant(
            [seed if seed is not None else random.randrange(2**31), pipeline_id], tf.int64
        )

        def add_masking(batch_index, features):
            batch_seed = tf.random.experimental.stateless_fold_in(base_seed, batch_index)
            features = dict(features)
            features.update(mask_fn(features, batch_seed))
            return features

        dataset = dataset.enumerate().map(
            add_masking, num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic
        )
    return dataset.prefetch(tf.data.AUTOTUNE)
