"""Metrics: the AUCs against pair counts and TF 1.x's tf.metrics.auc; the original's pretraining eval
metrics by hand and against its metric_fn written with TF 1.x's metrics."""

import numpy as np
import pytest
import tensorflow as tf

from convbert_tf.metrics import batch_auc, binary_auc, pretraining_eval_metrics, thresholded_auc


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


# ----- the original's eval metrics --------------------------------------------------------------

def tf1_auc(batches, num_thresholds=200):
    """tf.compat.v1.metrics.auc (TF 1.x's, still shipped) over update batches of (labels, probs, weights)."""
    graph = tf.Graph()
    with graph.as_default():
        labels = tf.compat.v1.placeholder(tf.int32, [None])
        probs = tf.compat.v1.placeholder(tf.float32, [None])
        weights = tf.compat.v1.placeholder(tf.float32, [None])
        value, update = tf.compat.v1.metrics.auc(labels, probs, weights, num_thresholds=num_thresholds)
        with tf.compat.v1.Session() as session:
            session.run(tf.compat.v1.local_variables_initializer())
            for batch in batches:
                session.run(update, dict(zip((labels, probs, weights), batch)))
            return float(session.run(value))


def test_thresholded_auc_by_hand():
    # Three thresholds (-1e-7, 0.5, 1 + 1e-7); positives 0.8, 0.3, negatives 0.6, 0.1:
    # (tp, fn, fp, tn) = (2, 0, 2, 0), (1, 1, 1, 1), (0, 2, 0, 2).
    e = 1e-6
    tpr = np.array([(2 + e) / (2 + e), (1 + e) / (2 + e), e / (2 + e)])
    fpr = np.array([2 / (2 + e), 1 / (2 + e), 0.0])
    expected = np.sum((fpr[:-1] - fpr[1:]) * (tpr[:-1] + tpr[1:]) / 2)  # 0.5 up to e
    got = thresholded_auc([1, 1, 0, 0], [0.8, 0.3, 0.6, 0.1], num_thresholds=3)
    assert abs(got - expected) < 1e-12 and abs(got - 0.5) < 1e-5
    assert binary_auc([1, 1, 0, 0], [0.8, 0.3, 0.6, 0.1]) == 0.75  # the exact one, for contrast
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        thresholded_auc([1, 0], [1.5, 0.2])


def test_thresholded_auc_equals_tf1_metrics_auc():
    """Accumulated over two update batches, with ties, exact 0 and 1, values on a threshold, weights."""
    rng = np.random.default_rng(1)
    probs = rng.random(3000).astype(np.float32)
    probs[:300] = 0.0
    probs[300:400] = 1.0
    probs[400:500] = np.float32(57 / 199)  # exactly a threshold: counted as not above it
    probs[500:800] = np.round(probs[500:800], 2)
    labels = (rng.random(3000) < probs * 0.8 + 0.1).astype(np.int32)
    weights = (rng.random(3000) < 0.9).astype(np.float32) * rng.integers(1, 3, 3000)
    expected = tf1_auc([(labels[:1700], probs[:1700], weights[:1700]), (labels[1700:], probs[1700:], weights[1700:])])
    assert abs(thresholded_auc(labels, probs, weights) - expected) < 2e-6
    expected = tf1_auc([(labels, probs, np.ones(3000, np.float32))], num_thresholds=17)
    assert abs(thresholded_auc(labels, probs, num_thresholds=17) - expected) < 2e-6


def tiny_eval_batch():
    """Two sequences, T = 5, P = 2; every metric below is worked out by hand from these."""
    return {
        "masked_lm_ids": np.array([[7, 9], [4, 0]]),
        "masked_lm_preds": np.array([[7, 3], [4, 0]]),  # right, wrong, right, (weight 0)
        "sampled_ids": np.array([[7, 8], [5, 0]]),  # right, wrong, wrong
        "masked_lm_weights": np.array([[1.0, 1.0], [1.0, 0.0]], np.float32),
        "mlm_losses": np.array([[0.5, 2.0], [1.0, 9.0]], np.float32),
        "input_mask": np.array([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0]]),
        "disc_labels": np.array([[0, 0, 1, 1, 1], [1, 0, 0, 0, 0]]),
        # Predicted fake where logit > 0 (0.0 is real): [1, 0, 1, 0, 0], [1, 0] on real tokens,
        # so TP 2, FP 1, FN 2, TN 2. The padding's logits count nowhere.
        "disc_logits": np.array([[0.5, -1.0, 2.0, -0.5, 0.0], [1.5, -2.0, 4.0, 3.0, -1.0]], np.float32),
        "disc_example_losses": np.array([0.4, 0.1], np.float32),
    }


def test_pretraining_eval_metrics_by_hand():
    arrays = tiny_eval_batch()
    arrays["disc_probs"] = 1 / (1 + np.exp(-arrays["disc_logits"]))
    results = pretraining_eval_metrics(arrays)
    assert results["masked_lm_accuracy"] == pytest.approx(2 / 3)
    assert results["masked_lm_loss"] == pytest.approx(3.5 / 3)
    assert results["sampled_masked_lm_accuracy"] == pytest.approx(1 / 3)
    assert results["disc_loss"] == pytest.approx(0.25)  # (0.4 + 0.1) / 2, not (5·0.4 + 2·0.1) / 7
    assert results["disc_accuracy"] == pytest.approx(4 / 7)
    assert results["disc_precision"] == pytest.approx(2 / 3)
    assert results["disc_recall"] == pytest.approx(2 / 4)
    # Real tokens: positives 0.88, 0.82, 0.5, 0.38 against negatives 0.62, 0.27, 0.12 win 10 of 12
    # pairs. The original also scores the 3 padding positions as negatives at 0, which every
    # positive beats: 22 of 24 (no pair shares one of the 200 thresholds' bins).
    assert results["disc_auc_exact"] == pytest.approx(10 / 12, abs=1e-12)
    assert results["disc_auc"] == pytest.approx(22 / 24, abs=1e-5)
    # Without the discriminator's arrays (disc_weight 0, as the original) its metrics are left out.
    mlm_only = {k: arrays[k] for k in ("masked_lm_ids", "masked_lm_preds", "masked_lm_weights", "mlm_losses")}
    assert set(pretraining_eval_metrics(mlm_only)) == {"masked_lm_accuracy", "masked_lm_loss"}


def original_metric_fn(batches):
    """The original's eval metric_fn, written with TF 1.x's metrics, run over update batches."""
    graph = tf.Graph()
    with graph.as_default():
        d = {k: tf.compat.v1.placeholder(v.dtype, [None] + list(v.shape[1:])) for k, v in batches[0].items()}
        mask = d["input_mask"]
        preds = tf.cast(tf.round((tf.sign(d["disc_logits"]) + 1) / 2), tf.int32)
        probs = tf.sigmoid(d["disc_logits"])
        metrics = {
            "masked_lm_accuracy": tf.compat.v1.metrics.accuracy(
                tf.reshape(d["masked_lm_ids"], [-1]), tf.reshape(d["masked_lm_preds"], [-1]),
                tf.reshape(d["masked_lm_weights"], [-1])),
            "masked_lm_loss": tf.compat.v1.metrics.mean(tf.reshape(d["mlm_losses"], [-1]),
                                                        tf.reshape(d["masked_lm_weights"], [-1])),
            "sampled_masked_lm_accuracy": tf.compat.v1.metrics.accuracy(
                tf.reshape(d["masked_lm_ids"], [-1]), tf.reshape(d["sampled_ids"], [-1]),
                tf.reshape(d["masked_lm_weights"], [-1])),
            "disc_loss": tf.compat.v1.metrics.mean(d["disc_example_losses"]),
            "disc_auc": tf.compat.v1.metrics.auc(d["disc_labels"] * mask, probs * tf.cast(mask, tf.float32)),
            "disc_accuracy": tf.compat.v1.metrics.accuracy(d["disc_labels"], preds, mask),
            "disc_precision": tf.compat.v1.metrics.accuracy(d["disc_labels"], preds, preds * mask),
            "disc_recall": tf.compat.v1.metrics.accuracy(d["disc_labels"], preds, d["disc_labels"] * mask),
        }
        with tf.compat.v1.Session() as session:
            session.run(tf.compat.v1.local_variables_initializer())
            for batch in batches:
                session.run([update for _, update in metrics.values()], {d[k]: v for k, v in batch.items()})
            return {k: float(session.run(value)) for k, (value, _) in metrics.items()}, session.run(
                probs, {d["disc_logits"]: np.concatenate([b["disc_logits"] for b in batches])})


def test_pretraining_eval_metrics_equal_the_originals_metric_fn():
    """Random batches through the original's formulas in TF 1.x metrics, accumulated batch by batch."""
    rng = np.random.default_rng(2)
    batches = []
    for _ in range(3):
        lengths = rng.integers(3, 13, size=4)
        mask = (np.arange(12)[None] < lengths[:, None]).astype(np.int32)  # [4, 12]
        batches.append({
            "masked_lm_ids": rng.integers(0, 5, (4, 3)).astype(np.int32),
            "masked_lm_preds": rng.integers(0, 5, (4, 3)).astype(np.int32),
            "sampled_ids": rng.integers(0, 5, (4, 3)).astype(np.int32),
            "masked_lm_weights": (rng.random((4, 3)) < 0.7).astype(np.float32),
            "mlm_losses": rng.random((4, 3)).astype(np.float32) * 5,
            "input_mask": mask,
            "disc_labels": ((rng.random((4, 12)) < 0.3) * mask).astype(np.int32),
            "disc_logits": np.round(rng.normal(size=(4, 12)), 1).astype(np.float32),  # with 0.0 and ties
            "disc_example_losses": rng.random(4).astype(np.float32),
        })
    expected, probs = original_metric_fn(batches)
    arrays = {k: np.concatenate([b[k] for b in batches]) for k in batches[0]}
    arrays["disc_probs"] = probs
    results = pretraining_eval_metrics(arrays)
    for key, value in expected.items():
        assert results[key] == pytest.approx(value, abs=2e-6), key
