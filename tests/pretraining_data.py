"""Tiny pretraining inputs written by tests: a vocab and TFRecords with a learnable pattern."""

import os

import numpy as np
import tensorflow as tf

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"w{i}" for i in range(59)]
SEQ_LENGTH = 32
# A 2-layer, 32-wide model: trains in seconds.
TINY_HPARAMS = {
    "model_size": "small", "vocab_size": len(VOCAB), "max_seq_length": SEQ_LENGTH, "train_batch_size": 8,
    "eval_batch_size": 8, "num_train_steps": 20, "num_warmup_steps": 5, "iterations_per_loop": 5,
    "save_checkpoints_steps": 10, "learning_rate": 2e-3, "embedding_size": 16, "generator_hidden_size": 0.5,
    "export_at_end": False,
    "model_hparam_overrides": {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4,
                               "intermediate_size": 64, "max_position_embeddings": SEQ_LENGTH},
}


def example(ids, length):
    ids = list(ids) + [0] * (length - len(ids))
    mask = [1 if i else 0 for i in ids]
    features = {"input_ids": ids, "input_mask": mask, "segment_ids": [0] * length}
    return tf.train.Example(features=tf.train.Features(feature={
        k: tf.train.Feature(int64_list=tf.train.Int64List(value=v)) for k, v in features.items()}))


def write_data_dir(data_dir, num_files=2, records_per_file=64, seq_length=SEQ_LENGTH, seed=0):
    """<data_dir>/vocab.txt and pretrain_tfrecords/: each sequence repeats one of 8 words.

    A generator learns this quickly (first the 8-word unigram, then copying a neighbour), so
    a falling MLM loss is a clear signal even for a tiny model and a hundred steps.
    """
    rng = np.random.default_rng(seed)
    os.makedirs(os.path.join(data_dir, "pretrain_tfrecords"), exist_ok=True)
    with open(os.path.join(data_dir, "vocab.txt"), "w") as f:
        f.write("\n".join(VOCAB) + "\n")
    for index in range(num_files):
        path = os.path.join(data_dir, "pretrain_tfrecords", f"pretrain_data.tfrecord-{index}-of-{num_files}")
        with tf.io.TFRecordWriter(path) as writer:
            for _ in range(records_per_file):
                n = int(rng.integers(10, seq_length + 1))
                word = 5 + int(rng.integers(0, 8))
                ids = [2] + [word] * (n - 2) + [3]
                writer.write(example(ids, seq_length).SerializeToString())
    return data_dir
