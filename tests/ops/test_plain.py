"""The plain reference math of convbert_tf.ops against NumPy: the window unfold and the padding bias."""

import numpy as np
import pytest
import tensorflow as tf

from convbert_tf import ops

RNG = np.random.default_rng(0)


def test_unfold_windows_matches_numpy():
    values = RNG.normal(size=(2, 6, 3)).astype(np.float32)
    for k in (1, 3, 5, 9):
        c = (k - 1) // 2
        expected = np.zeros((2, 6, 3, k), np.float32)
        for t in range(6):
            for i in range(k):
                if 0 <= t + i - c < 6:
                    expected[:, t, :, i] = values[:, t + i - c, :]
        np.testing.assert_array_equal(ops.unfold_windows(tf.constant(values), k), expected)
    with pytest.raises(ValueError, match="odd"):
        ops.unfold_windows(tf.constant(values), 4)


def test_attention_bias_matches_numpy():
    mask = np.array([[1, 1, 0], [1, 0, 0]])
    bias = ops.attention_bias_from_padding_mask(tf.constant(mask)).numpy()
    assert bias.shape == (2, 1, 1, 3)
    np.testing.assert_array_equal(bias[:, 0, 0], (1 - mask) * -10000.0)
