"""A tiny encoder config and batch shared by the checkpoint tests of both layouts."""

import numpy as np
import tensorflow as tf

from convbert_tf import ConvBertConfig

CONFIG = ConvBertConfig(vocab_size=40, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=64, embedding_size=16, max_position_embeddings=24,
                        conv_kernel_size=5, linear_groups=2)

BATCH = {
    "input_ids": np.array([[2, 7, 9, 11, 3, 0, 0], [2, 5, 6, 3, 8, 13, 3]], np.int32),
    "input_mask": np.array([[1, 1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1, 1]], np.int32),
    "segment_ids": np.array([[0, 0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 1, 1, 1]], np.int32),
}


def run(model):
    return model({k: tf.constant(v) for k, v in BATCH.items()})
