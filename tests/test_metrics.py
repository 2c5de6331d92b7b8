"""AUC: the exact NumPy version and the per-batch TensorFlow version against brute-force pair counts."""

import numpy as np

from convbert_tf.metrics import batch_auc, binary_auc


def brute_force_auc(labels, scores):
    positives = [s for l, s in zip(labels, scores) if l]
    negatives = [s for l, s in zip(labels, scores) if not l]
    wins = sum((p > n) + 0.5 * (p == n) for p in positives for n in negatives)
    return wins / (len(positives) * len(negatives))


def test_auc_equals_pair_counting():
    rng = np.random.default_rng(0)
    for _ in range(20):
        n = int(rng.integers(5, 60))
        labels = rng.integers(0, 2, n)
        if labels.min() == labels.max():
            continue
        scores = np.round(rng.normal(size=n), 1)  # with ties
        assert abs(binary_auc(labels, scores) - brute_force_auc(labels, scores)) < 1e-12
        distinct = rng.normal(size=n)  # the batch version breaks ties by order: compare without ties
        weights = (rng.random(n) < 0.8).astype(np.float32)
        keep = weights > 0
        if labels[keep].min() == labels[keep].max():
            continue
        expected = brute_force_auc(labels[keep], distinct[keep])
        assert abs(binary_auc(labels, distinct, weights) - expected) < 1e-12
        assert abs(float(batch_auc(labels, distinct, weights)) - expected) < 1e-6


def test_auc_degenerate_cases():
    assert binary_auc([1, 1, 1], [0.1, 0.2, 0.3]) == 0.5
    assert float(batch_auc(np.array([0, 0]), np.array([0.1, 0.3]), np.ones(2))) == 0.5
    assert binary_auc([0, 1], [0.1, 0.9]) == 1.0 and binary_auc([1, 0], [0.1, 0.9]) == 0.0
