"""Fine-tuning metrics of classification, regression and chunking, in plain Python and NumPy.

Each task's `score` picks its metrics (`tasks`); the QA scores are in `qa.scoring`. Conventions (the
original's, as its finetune/scorer.py subclasses report them): every metric is a percentage (×100)
except MSE. Classification predictions and labels are label ids (ints); regression values are on the
task's own scale (STS: 0-5, after the ×5 rescaling of the model's outputs).

Deliberate differences from the original:

* MRPC and QQP report F1 (positive class 1) next to accuracy. The original computed accuracy only;
  its unused F1 scorer counted the gold positives from the predictions.
* Correlations (Pearson, Spearman) and MCC are 0.0, not NaN, when a side is constant.

Chunk F1 reads tag sequences into chunks as the original does by default; `span_rule="conlleval"`
(the hparam `chunk_span_rule`) reads them as the CoNLL evaluation script does (see `tag_spans`).
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np


# ----------------------------------------------------------------------------------------------
# Classification and regression.


def _as_int_pair(predictions, labels):
    predictions = np.asarray(predictions, dtype=np.int64).reshape(-1)  # [N]
    labels = np.asarray(labels, dtype=np.int64).reshape(-1)  # [N]
    if predictions.shape != labels.shape:
        raise ValueError(f"{predictions.size} predictions for {labels.size} labels")
    if labels.size == 0:
        raise ValueError("cannot score an empty set of examples")
    return predictions, labels


def _as_float_pair(predictions, targets):
    predictions = np.asarray(predictions, dtype=np.float64).reshape(-1)  # [N]
    targets = np.asarray(targets, dtype=np.float64).reshape(-1)  # [N]
    if predictions.shape != targets.shape:
        raise ValueError(f"{predictions.size} predictions for {targets.size} targets")
    if targets.size == 0:
        raise ValueError("cannot score an empty set of examples")
    return predictions, targets


def accuracy(predictions, labels) -> float:
    """100 · (fraction of predictions equal to their label)."""
    predictions, labels = _as_int_pair(predictions, labels)
    return 100.0 * float(np.mean(predictions == labels))


def f1_binary(predictions, labels, positive: int = 1) -> float:
    """100 · F1 of the class `positive`: 2·tp / (2·tp + fp + fn); 0 when there is no true positive."""
    predictions, labels = _as_int_pair(predictions, labels)
    predicted = predictions == positive
    gold = labels == positive
    true_positives = int(np.sum(predicted & gold))
    if true_positives == 0:
        return 0.0
    precision = true_positives / int(np.sum(predicted))
    recall = true_positives / int(np.sum(gold))
    return 100.0 * 2.0 * precision * recall / (precision + recall)


def matthews_corrcoef(predictions, labels) -> float:
    """100 · Matthews correlation, the multi-class (Gorodkin) form; binary: (tp·tn − fp·fn)/√(…).

    With the K×K confusion matrix C (rows gold, columns predicted), t_k = Σ_j C[k, j],
    p_k = Σ_i C[i, k], c = trace C, s = N:  MCC = (c·s − Σ p_k t_k) / √((s² − Σ p_k²)(s² − Σ t_k²)).
    0 when either side is constant (the denominator vanishes).
    """
    predictions, labels = _as_int_pair(predictions, labels)
    classes = np.union1d(predictions, labels)
    gold_index = np.searchsorted(classes, labels)  # [N]
    predicted_index = np.searchsorted(classes, predictions)  # [N]
    confusion = np.zeros((classes.size, classes.size), dtype=np.float64)  # [K, K]
    np.add.at(confusion, (gold_index, predicted_index), 1.0)
    true_totals = confusion.sum(axis=1)  # [K]
    predicted_totals = confusion.sum(axis=0)  # [K]
    correct = np.trace(confusion)
    samples = confusion.sum()
    covariance = correct * samples - float(predicted_totals @ true_totals)
    variance_predicted = samples**2 - float(predicted_totals @ predicted_totals)
    variance_true = samples**2 - float(true_totals @ true_totals)
    if variance_predicted == 0.0 or variance_true == 0.0:
        return 0.0
    return 100.0 * covariance / math.sqrt(variance_predicted * variance_true)


def pearson(predictions, targets) -> float:
    """100 · Pearson correlation; 0 when either side is constant."""
    predictions, targets = _as_float_pair(predictions, targets)
    x = predictions - predictions.mean()
    y = targets - targets.mean()
    denominator = math.sqrt(float(x @ x) * float(y @ y))
    if denominator == 0.0:
        return 0.0
    return 100.0 * float(x @ y) / denominator


def average_ranks(values) -> np.ndarray:
    """Ranks 1..N of `values` [N]; tied values share the mean of the ranks they span."""
    values = np.asarray(values, dtype=np.float64).reshape(-1)  # [N]
    order = np.argsort(values, kind="mergesort")  # [N]
    sorted_values = values[order]
    ranks = np.empty(values.size, dtype=np.float64)  # [N]
    start = 0
    while start < values.size:
        end = start
        while end + 1 < values.size and sorted_values[end + 1] == sorted_values[start]:
            end += 1
        ranks[order[start : end + 1]] = (start + end) / 2.0 + 1.0  # mean of ranks start+1..end+1
        start = end + 1
    return ranks


def spearman(predictions, targets) -> float:
    """100 · Spearman correlation: Pearson of the average ranks (ties share their mean rank)."""
    predictions, targets = _as_float_pair(predictions, targets)
    return pearson(average_ranks(predictions), average_ranks(targets))


def mean_squared_error(predictions, targets) -> float:
    """Mean of (prediction − target)², on the targets' own scale (not a percentage)."""
    predictions, targets = _as_float_pair(predictions, targets)
    return float(np.mean((predictions - targets) ** 2))



# ----------------------------------------------------------------------------------------------
# Chunking (entity-level F1 over spans).


def _split_tag(tag: str) -> tuple[str, str]:
    """"B-NP" → ("B", "NP"); "O" → ("O", ""). Anything else unknown is read as "O"."""
    if tag == "O" or "-" not in tag:
        return "O", ""
    prefix, kind = tag.split("-", 1)
    if prefix not in ("B", "I", "E", "S"):
        return "O", ""
    return prefix, kind


# How a BIOES (or IOB) tag sequence is read into chunks; see `tag_spans`.
SPAN_RULES = ("original", "conlleval")


def _check_span_rule(span_rule: str):
    if span_rule not in SPAN_RULES:
        raise ValueError(f"span_rule {span_rule!r} is not one of {SPAN_RULES} (the hparam chunk_span_rule)")


def _original_spans(tags: Sequence[str]) -> list[tuple[int, int, str]]:
    """The original release's reading (its `get_span_labels`): a chunk closes only before B, S or
    O, or at the end, and takes the type of its last tag; a chunk opens at B, at S, or at any tag
    after O. E and a change of type close nothing: `B-NP I-VP` is one VP chunk, `E-NP E-NP` one
    NP chunk of two words."""
    spans = []
    start, previous_prefix, previous_kind = 0, "O", ""
    for index, tag in enumerate(tags):
        prefix, kind = _split_tag(tag)
        if prefix in ("B", "S", "O") and previous_prefix != "O":
            spans.append((start, index - 1, previous_kind))
        if prefix in ("B", "S") or previous_prefix == "O":
            start = index
        previous_prefix, previous_kind = prefix, kind
    if previous_prefix != "O":
        spans.append((start, len(tags) - 1, previous_kind))
    return spans


def _conlleval_spans(tags: Sequence[str]) -> list[tuple[int, int, str]]:
    """conlleval's reading: a chunk starts at B or S, or at I/E when no chunk of that type is
    open; it ends before O, B, S or a change of type, and after E or S."""
    spans = []
    open_start, open_type = None, None
    for index, tag in enumerate(tags):
        prefix, kind = _split_tag(tag)
        if open_type is not None and (prefix in ("O", "B", "S") or kind != open_type):
            spans.append((open_start, index - 1, open_type))
            open_start, open_type = None, None
        if prefix != "O" and open_type is None:
            open_start, open_type = index, kind
        if prefix in ("E", "S") and open_type is not None:
            spans.append((open_start, index, open_type))
            open_start, open_type = None, None
    if open_type is not None:
        spans.append((open_start, len(tags) - 1, open_type))
    return spans


def tag_spans(tags: Sequence[str], span_rule: str = "original") -> list[tuple[int, int, str]]:
    """Chunks (first, last, type), inclusive word indices, of a BIOES, IOB1 or IOB2 tag sequence.

    Both rules read well-formed BIOES and IOB2 alike; they differ on ill-formed sequences, which
    per-word predictions often are:

    * "original" (default): the original release's rule (`_original_spans`). `B-NP I-VP` is one
      chunk (0, 1, VP); `E-NP E-NP` is one chunk (0, 1, NP); `B-NP E-NP I-NP` is (0, 2, NP).
    * "conlleval": the CoNLL evaluation script's rule (`_conlleval_spans`), which closes a chunk
      at E and at a change of type: (0, 0, NP) (1, 1, VP); (0, 0, NP) (1, 1, NP); (0, 1, NP)
      (2, 2, NP). Not in the original.
    """
    _check_span_rule(span_rule)
    return _original_spans(tags) if span_rule == "original" else _conlleval_spans(tags)


def spans_to_bioes(spans: Sequence[tuple[int, int, str]], length: int) -> list[str]:
    """Tags [length] for non-overlapping inclusive spans: S-x for one word, else B-x I-x … E-x."""
    tags = ["O"] * length
    for first, last, kind in spans:
        if first == last:
            tags[first] = f"S-{kind}"
        else:
            tags[first] = f"B-{kind}"
            for index in range(first + 1, last):
                tags[index] = f"I-{kind}"
            tags[last] = f"E-{kind}"
    return tags


def iob_to_bioes(tags: Sequence[str], span_rule: str = "original") -> list[str]:
    """IOB1/IOB2 (or BIOES) tags to BIOES, through their chunks as `span_rule` reads them (the
    original converts its gold tags this way when it reads them)."""
    return spans_to_bioes(tag_spans(tags, span_rule), len(tags))


def chunk_f1(predicted: Sequence[Sequence[str]], gold: Sequence[Sequence[str]], span_rule: str = "original") -> dict:
    """Entity-level precision, recall and F1 (percent): a predicted chunk counts only if a gold
    chunk has the same first word, last word and type. Both sides are read into chunks by
    `span_rule` (see `tag_spans`). Counts are pooled over all sentences."""
    _check_span_rule(span_rule)
    if len(predicted) != len(gold):
        raise ValueError(f"{len(predicted)} predicted sentences for {len(gold)} gold ones")
    correct = n_predicted = n_gold = 0
    for index, (predicted_tags, gold_tags) in enumerate(zip(predicted, gold)):
        if len(predicted_tags) != len(gold_tags):
            raise ValueError(f"sentence {index}: {len(predicted_tags)} predicted tags for {len(gold_tags)} words")
        predicted_spans = set(tag_spans(predicted_tags, span_rule))
        gold_spans = set(tag_spans(gold_tags, span_rule))
        correct += len(predicted_spans & gold_spans)
        n_predicted += len(predicted_spans)
        n_gold += len(gold_spans)
    precision = correct / n_predicted if n_predicted else 0.0
    recall = correct / n_gold if n_gold else 0.0
    f1 = 2.0 * precision * recall / (precision + recall) if correct else 0.0
    return {"f1": 100.0 * f1, "precision": 100.0 * precision, "recall": 100.0 * recall}
