"""Metrics as plain functions: the discriminator's AUCs and the original's pretraining eval metrics.

Legend: I items (an AUC's inputs, flattened), M thresholds; N sequences (all eval batches
together), T length, P masked positions.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
import tensorflow as tf

# tf.compat.v1.metrics.auc's constants: its outer thresholds sit kepsilon outside [0, 1], and
# epsilon keeps its rates finite.
TF1_AUC_THRESHOLD_EPSILON = 1e-7
TF1_AUC_RATE_EPSILON = 1e-6


def binary_auc(labels, scores, weights=None) -> float:
    """Area under the ROC curve, exact, ties counted as half (NumPy; for evaluation).

    Args:
      labels: [I] 0/1. scores: [I] real. weights: optional [I] 0/1 mask of the items to count.
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
    labels = tf.reshape(tf.cast(labels, tf.float32), [-1])  # [I]
    scores = tf.reshape(tf.cast(scores, tf.float32), [-1])  # [I]
    weights = tf.reshape(tf.cast(weights, tf.float32), [-1])  # [I]
    order = tf.argsort(scores, stable=True)  # ascending
    positives = tf.gather(labels * weights, order)  # [I]
    negatives = tf.gather((1.0 - labels) * weights, order)  # [I]
    negatives_below = tf.cumsum(negatives, exclusive=True)  # [I]
    n_pos, n_neg = tf.reduce_sum(positives), tf.reduce_sum(negatives)
    auc = tf.reduce_sum(positives * negatives_below) / tf.maximum(n_pos * n_neg, 1.0)
    return tf.where(n_pos * n_neg > 0, auc, 0.5)


def thresholded_auc(labels, probs, weights=None, num_thresholds: int = 200) -> float:
    """ROC AUC as TF 1.x's `tf.metrics.auc` computes it by default (NumPy; what the original reports).

    Thresholds: -1e-7, i/(num_thresholds - 1) for i = 1 .. num_thresholds - 2, 1 + 1e-7 (float32).
    At each, an item is predicted positive when prob > threshold; the weighted confusion counts
    give tpr = (tp + 1e-6) / (tp + fn + 1e-6) and fpr = fp / (fp + tn + 1e-6), and the area is the
    trapezoid sum over consecutive thresholds. Counts accumulated over several batches give the
    same result as one call on all items.

    Args:
      labels: [...] 0/1. probs: [...] in [0, 1]. weights: optional [...] item weights.
      num_thresholds: the number of thresholds (TF's default 200).
    Returns:
      The AUC as a float.
    """
    probs = np.asarray(probs, np.float32).reshape(-1)  # [I]
    labels = np.asarray(labels).reshape(-1).astype(bool)  # [I]
    weights = (np.ones(probs.shape, np.float64) if weights is None
               else np.asarray(weights, np.float64).reshape(-1))  # [I]
    if probs.size and (probs.min() < 0 or probs.max() > 1):
        raise ValueError(f"thresholded_auc: probs must be in [0, 1], got [{probs.min()}, {probs.max()}]")
    inner = [(i + 1) / (num_thresholds - 1) for i in range(num_thresholds - 2)]
    thresholds = np.array([-TF1_AUC_THRESHOLD_EPSILON] + inner + [1.0 + TF1_AUC_THRESHOLD_EPSILON],
                          np.float32)  # [M]
    order = np.argsort(probs, kind="stable")
    sorted_probs = probs[order]  # [I]
    positive_weight = np.concatenate([[0.0], np.cumsum((weights * labels)[order])])  # [I + 1]
    negative_weight = np.concatenate([[0.0], np.cumsum((weights * ~labels)[order])])  # [I + 1]
    at_or_below = np.searchsorted(sorted_probs, thresholds, side="right")  # [M], items with prob <= threshold
    fn, tn = positive_weight[at_or_below], negative_weight[at_or_below]  # [M]
    tp, fp = positive_weight[-1] - fn, negative_weight[-1] - tn  # [M]
    tpr = (tp + TF1_AUC_RATE_EPSILON) / (tp + fn + TF1_AUC_RATE_EPSILON)  # [M]
    fpr = fp / (fp + tn + TF1_AUC_RATE_EPSILON)  # [M]
    return float(np.sum((fpr[:-1] - fpr[1:]) * (tpr[:-1] + tpr[1:]) / 2.0))


def _weighted_accuracy(labels, predictions, weights) -> float:
    """sum(w · [label = prediction]) / sum(w), 0 when sum(w) = 0 (TF 1.x's `tf.metrics.accuracy`)."""
    return _weighted_mean(np.asarray(labels) == np.asarray(predictions), weights)


def _weighted_mean(values, weights) -> float:
    """sum(w · values) / sum(w), 0 when sum(w) = 0 (TF 1.x's `tf.metrics.mean` with weights)."""
    weights = np.asarray(weights, np.float64)
    total = weights.sum()
    return float((weights * np.asarray(values, np.float64)).sum() / total) if total else 0.0


def pretraining_eval_metrics(arrays: Mapping[str, np.ndarray]) -> dict:
    """The original's pretraining eval metrics, under its names, from all eval batches' arrays.

    Args:
      arrays: `masked_lm_ids`, `masked_lm_preds` (argmax of the generator logits),
        `masked_lm_weights`, `mlm_losses` (-log p per slot) [N, P]; for the ELECTRA objective also
        `sampled_ids` [N, P]; and when the discriminator loss is on (disc_weight > 0, as the
        original reports them) `disc_labels`, `disc_logits`, `disc_probs` (their sigmoid, as
        TensorFlow computes it), `input_mask` [N, T] and `disc_example_losses` [N] (each
        sequence's mean loss over its real tokens). A token is predicted fake when its logit > 0.

    Returns:
      masked_lm_accuracy, masked_lm_loss (means over weighted slots), sampled_masked_lm_accuracy,
      disc_loss (the mean of the per-sequence means), disc_auc (`thresholded_auc` of labels and
      probabilities both multiplied by input_mask: padding counts as negatives scored 0, as the
      original fed it), disc_accuracy, disc_precision, disc_recall (over real tokens), and
      disc_auc_exact (`binary_auc` of the logits over real tokens only; not in the original).
      Keys whose inputs are absent are left out.
    """
    weights = arrays["masked_lm_weights"]
    results = {
        "masked_lm_accuracy": _weighted_accuracy(arrays["masked_lm_ids"], arrays["masked_lm_preds"], weights),
        "masked_lm_loss": _weighted_mean(arrays["mlm_losses"], weights),
    }
    if "sampled_ids" in arrays:
        results["sampled_masked_lm_accuracy"] = _weighted_accuracy(arrays["masked_lm_ids"], arrays["sampled_ids"],
                                                                   weights)
    if "disc_labels" in arrays:
        mask = arrays["input_mask"].astype(np.int64)  # [N, T]
        labels = arrays["disc_labels"].astype(np.int64)  # [N, T]
        preds = (arrays["disc_logits"] > 0).astype(np.int64)  # [N, T]
        results.update(
            disc_loss=float(np.mean(arrays["disc_example_losses"])),
            disc_auc=thresholded_auc(labels * mask, arrays["disc_probs"] * mask.astype(np.float32)),
            disc_accuracy=_weighted_accuracy(labels, preds, mask),
            disc_precision=_weighted_accuracy(labels, preds, preds * mask),
            disc_recall=_weighted_accuracy(labels, preds, labels * mask),
            disc_auc_exact=binary_auc(labels, arrays["disc_logits"], mask),
        )
    return results
