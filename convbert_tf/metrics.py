"""Metrics as plain functions: the discriminator's AUC (NumPy for eval, TensorFlow per batch)."""

from __future__ import annotations

import numpy as np
import tensorflow as tf


def binary_auc(labels, scores, weights=None) -> float:
    """Area under the ROC curve, exact, ties counted as half (NumPy; for evaluation).

    Args:
      labels: [N] 0/1. scores: [N] real. weights: optional [N] 0/1 mask of the items to count.
    Returns:
      AUC in [0, 1]; 0.5 when only one class is present.
    """
    labels = np.asarray(labels).reshape(-1).astype(bool)
    scores = np.asarray(scores, np.float64).reshape(-1)
    if weights is not None:
        keep = np.asarray(weights).reshape(-1) > 0
        labels, scores = labels[keep], scores[keep]
    n_pos, n_neg = int(labels.sum()), int((~labels).sum())
    if n_pos == 0 or n_neg == 0:
        return 0.5
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores), np.float64)
    sorted_scores = scores[order]
    # Average ranks (1-based) over runs of equal scores.
    boundaries = np.flatnonzero(np.diff(sorted_scores)) + 1
    starts = np.concatenate([[0], boundaries])
    ends = np.concatenate([boundaries, [len(scores)]])
    for start, end in zip(starts, ends):
        ranks[order[start:end]] = (start + 1 + end) / 2.0
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def batch_auc(labels, scores, weights):
    """AUC of one batch in TensorFlow (ties broken by order; for training summaries).

    Args:
      labels: [...] 0/1. scores: [...] float. weights: [...] 0/1 mask of the items to count.
    Returns:
      float32 scalar; 0.5 when only one class is present among the counted items.
    """
    labels = tf.reshape(tf.cast(labels, tf.float32), [-1])  # [N]
    scores = tf.reshape(tf.cast(scores, tf.float32), [-1])  # [N]
    weights = tf.reshape(tf.cast(weights, tf.float32), [-1])  # [N]
    order = tf.argsort(scores, stable=True)  # ascending
    positives = tf.gather(labels * weights, order)  # [N]
    negatives = tf.gather((1.0 - labels) * weights, order)  # [N]
    negatives_below = tf.cumsum(negatives, exclusive=True)  # [N]
    n_pos, n_neg = tf.reduce_sum(positives), tf.reduce_sum(negatives)
    auc = tf.reduce_sum(positives * negatives_below) / tf.maximum(n_pos * n_neg, 1.0)
    return tf.where(n_pos * n_neg > 0, auc, 0.5)
