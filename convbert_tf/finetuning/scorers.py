"""Fine-tuning metrics in plain Python and NumPy, and `score_task`, which picks each task's metrics.

Conventions (the original's, reference §5.1 and §5.4): every metric is a percentage (×100) except
MSE. Classification predictions and labels are label ids (ints); regression values are on the
task's own scale (STS: 0-5, after the ×5 rescaling of §9.17).

Deliberate differences from the original:

* MRPC and QQP report F1 (positive class 1) next to accuracy. The original computed accuracy only;
  its unused F1 scorer counted the gold positives from the predictions (§9.17).
* Correlations (Pearson, Spearman) and MCC are 0.0, not NaN, when a side is constant.
* SQuAD 2.0 best thresholds treat equal null odds as one step (a threshold answers every question
  whose null odds are ≤ it, so questions with equal odds can only be answered together); the
  official script steps through ties one question at a time.
* Token F1 of two answers that both normalize to nothing is 1.0 (the SQuAD 2.0 rule), for every
  QA task; the v1.1 script gives 0.0 there (only reachable when a gold answer is, e.g., "the").

Chunk F1 reads tag sequences into chunks as the original does by default; `span_rule="conlleval"`
(the hparam `chunk_span_rule`) reads them as the CoNLL evaluation script does (see `tag_spans`).
"""

from __future__ import annotations

import collections
import logging
import math
import re
import string
from typing import Mapping, Sequence

import numpy as np

logger = logging.getLogger(__name__)


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
# Extractive QA (SQuAD 1.1 / 2.0, MRQA).

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = frozenset(string.punctuation)


def normalize_answer(text: str) -> str:
    """The official SQuAD answer normalization, in its order: lower-case, drop ASCII punctuation,
    drop the words a/an/the, collapse whitespace.  "The  Cat!" → "cat"."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in _PUNCTUATION)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def exact_match(prediction: str, gold: str) -> float:
    """1.0 when the normalized answers are equal, else 0.0."""
    return float(normalize_answer(prediction) == normalize_answer(gold))


def token_f1(prediction: str, gold: str) -> float:
    """Bag-of-words F1 of the normalized answers; 1.0 if both are empty, 0.0 if only one is."""
    predicted_tokens = normalize_answer(prediction).split()
    gold_tokens = normalize_answer(gold).split()
    if not predicted_tokens or not gold_tokens:
        return float(predicted_tokens == gold_tokens)
    common = collections.Counter(predicted_tokens) & collections.Counter(gold_tokens)
    overlap = sum(common.values())
    if overlap == 0:
        return 0.0
    precision = overlap / len(predicted_tokens)
    recall = overlap / len(gold_tokens)
    return 2.0 * precision * recall / (precision + recall)


def _per_question_scores(answers: Mapping[str, str], gold: Mapping[str, Sequence[str]]):
    """Per question: max EM and max F1 over its gold answers. A missing prediction scores 0."""
    missing = [qid for qid in gold if qid not in answers]
    if missing:
        logger.warning("%d of %d questions have no prediction and score 0 (first: %s)",
                       len(missing), len(gold), missing[0])
    exact, f1 = {}, {}
    for qid, gold_answers in gold.items():
        if qid not in answers:
            exact[qid] = f1[qid] = 0.0
            continue
        exact[qid] = max(exact_match(answers[qid], g) for g in gold_answers)
        f1[qid] = max(token_f1(answers[qid], g) for g in gold_answers)
    return exact, f1


def _check_gold(gold: Mapping[str, Sequence[str]]):
    if not gold:
        raise ValueError("cannot score an empty set of questions")
    for qid, answers in gold.items():
        if not answers:
            raise ValueError(f"question {qid} has no gold answers; for SQuAD 2.0 use squad_v2_gold")


def squad_scores(answers: Mapping[str, str], gold: Mapping[str, Sequence[str]]) -> dict:
    """SQuAD 1.1 / MRQA: {"exact_match", "f1"} in percent, each the mean over the gold questions of
    the max over that question's gold answers.

    Args:
      answers: qid → predicted text.
      gold: qid → non-empty list of gold answer texts.
    """
    _check_gold(gold)
    exact, f1 = _per_question_scores(answers, gold)
    return {"exact_match": 100.0 * sum(exact.values()) / len(gold),
            "f1": 100.0 * sum(f1.values()) / len(gold)}


def squad_v2_gold(answers: Sequence[str]) -> list[str]:
    """SQuAD 2.0 gold for one question: its answers that normalize to something, or [""] (no
    answer) when there are none."""
    kept = [a for a in answers if normalize_answer(a)]
    return kept or [""]


def best_threshold(scores: Mapping[str, float], answers: Mapping[str, str], null_odds: Mapping[str, float],
                   has_answer: Mapping[str, bool]) -> tuple[float, float]:
    """The null-odds threshold that maximizes the mean score, and that score (percent).

    A question is answered (its non-empty prediction kept) when null_odds ≤ threshold, else its
    prediction is blanked. Blanking scores 1 on an unanswerable question and 0 on an answerable
    one; answering scores `scores[qid]` on an answerable one and 1 or 0 on an unanswerable one (1
    only if the prediction is itself empty). Thresholds are swept over the distinct null odds
    (ties move together); answering nothing is tried first, reported as a threshold below every
    null odds (min − 1).

    Returns:
      (best score in percent, its threshold).
    """
    qids = [qid for qid in has_answer if qid in null_odds]
    if not qids:
        raise ValueError("no question has null odds; best_threshold needs null_odds for every question")
    current = float(sum(1 for qid in qids if not has_answer[qid]))  # everything blanked
    ordered = sorted(qids, key=lambda q: null_odds[q])
    best, threshold = current, null_odds[ordered[0]] - 1.0
    index = 0
    while index < len(ordered):
        odds = null_odds[ordered[index]]
        while index < len(ordered) and null_odds[ordered[index]] == odds:
            qid = ordered[index]
            if has_answer[qid]:
                current += scores[qid]
            elif answers.get(qid, ""):
                current -= 1.0
            index += 1
        if current > best:
            best, threshold = current, odds
    return 100.0 * best / len(qids), float(threshold)


def squad_v2_scores(answers: Mapping[str, str], gold: Mapping[str, Sequence[str]],
                    null_odds: Mapping[str, float] | None = None, na_threshold: float | None = None) -> dict:
    """SQuAD 2.0 metrics, in percent, as the official v2 script computes them.

    Args:
      answers: qid → predicted text. With `null_odds` these are the best non-empty answers before
        thresholding; without, the final predictions ("" = no answer).
      gold: qid → answer texts as read (an empty list for an unanswerable question; see
        `squad_v2_gold`).
      null_odds: qid → null odds (higher = more likely unanswerable), optional.
      na_threshold: with `null_odds`, a question is predicted unanswerable when its null odds
        exceed this (the original's qa_na_threshold, −2.75).

    Returns:
      exact_match, f1, total; HasAns_exact, HasAns_f1, HasAns_total and NoAns_exact, NoAns_f1,
      NoAns_total for the questions of each kind present; with `null_odds` also best_exact,
      best_exact_thresh, best_f1, best_f1_thresh.
    """
    if not gold:
        raise ValueError("cannot score an empty set of questions")
    gold = {qid: squad_v2_gold(answers_) for qid, answers_ in gold.items()}
    has_answer = {qid: bool(normalize_answer(g[0])) for qid, g in gold.items()}
    exact_raw, f1_raw = _per_question_scores(answers, gold)
    if null_odds is not None:
        if na_threshold is None:
            raise ValueError("squad_v2_scores: na_threshold is required with null_odds")
        missing = [qid for qid in gold if qid not in null_odds]
        if missing:
            raise ValueError(f"{len(missing)} questions have no null odds (first: {missing[0]})")
        exact, f1 = dict(exact_raw), dict(f1_raw)
        for qid in gold:
            if null_odds[qid] > na_threshold:
                exact[qid] = f1[qid] = float(not has_answer[qid])
    else:
        exact, f1 = exact_raw, f1_raw
    total = len(gold)
    result = {"exact_match": 100.0 * sum(exact.values()) / total, "f1": 100.0 * sum(f1.values()) / total,
              "total": total}
    for prefix, wanted in (("HasAns", True), ("NoAns", False)):
        subset = [qid for qid in gold if has_answer[qid] == wanted]
        if subset:
            result[f"{prefix}_exact"] = 100.0 * sum(exact[q] for q in subset) / len(subset)
            result[f"{prefix}_f1"] = 100.0 * sum(f1[q] for q in subset) / len(subset)
            result[f"{prefix}_total"] = len(subset)
    if null_odds is not None:
        result["best_exact"], result["best_exact_thresh"] = best_threshold(exact_raw, answers, null_odds, has_answer)
        result["best_f1"], result["best_f1_thresh"] = best_threshold(f1_raw, answers, null_odds, has_answer)
    return result


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


# ----------------------------------------------------------------------------------------------
# Per task.

# The original's metric per GLUE task (reference §5.1), plus F1 for MRPC and QQP.
CLASSIFICATION_METRICS = {
    "cola": ("mcc",), "sst": ("accuracy",), "mrpc": ("accuracy", "f1"), "qqp": ("accuracy", "f1"),
    "mnli": ("accuracy",), "qnli": ("accuracy",), "rte": ("accuracy",), "wnli": ("accuracy",),
}


def score_task(task, predictions, examples) -> dict:
    """Scores one task's predictions for one split's examples; metric names as the original's.

    Args:
      task: a `tasks.Task` (read: name, kind, label_list, version_2 for QA, span_rule for tagging).
      predictions: aligned with `examples`:
        * classification: label names (or label ids);
        * regression (sts): floats on the 0-5 scale;
        * qa: a `qa.QAPredictions` (or a plain {qid: text});
        * tagging: one list of BIOES tags per example, one tag per word.
      examples: the split's examples, as `task.read_examples` returned them, with labels. Score
        each split on its own (MNLI matched and mismatched are two calls).

    Returns:
      cola: mcc; sst, mnli, qnli, rte, wnli: accuracy; mrpc, qqp: accuracy and f1; sts: pearson,
      spearman, mse; squadv1 and MRQA: exact_match, f1; squad (2.0): those plus the v2 extras of
      `squad_v2_scores`; chunk: f1, precision, recall.
    """
    if task.kind == "qa":
        gold = {example.qid: list(example.answers) for example in examples}
        if getattr(task, "version_2", False):
            if hasattr(predictions, "null_odds") and predictions.null_odds:
                return squad_v2_scores(predictions.best_answers, gold, predictions.null_odds,
                                       predictions.na_threshold)
            return squad_v2_scores(getattr(predictions, "predictions", predictions), gold)
        return squad_scores(getattr(predictions, "predictions", predictions), gold)
    if len(predictions) != len(examples):
        raise ValueError(f"{task.name}: {len(predictions)} predictions for {len(examples)} examples")
    unlabeled = [e for e in examples if e.label is None] if task.kind != "tagging" else []
    if unlabeled:
        raise ValueError(f"{task.name}: example {unlabeled[0].guid} of split {unlabeled[0].split} has no "
                         "label; test splits cannot be scored (write a submission file instead)")
    if task.kind == "classification":
        label_ids = {label: index for index, label in enumerate(task.label_list)}
        predicted = [label_ids[p] if isinstance(p, str) else int(p) for p in predictions]
        gold = [label_ids[example.label] for example in examples]
        metrics = {"mcc": lambda: matthews_corrcoef(predicted, gold), "accuracy": lambda: accuracy(predicted, gold),
                   "f1": lambda: f1_binary(predicted, gold)}
        return {name: metrics[name]() for name in CLASSIFICATION_METRICS[task.name]}
    if task.kind == "regression":
        gold = [example.label for example in examples]
        return {"pearson": pearson(predictions, gold), "spearman": spearman(predictions, gold),
                "mse": mean_squared_error(predictions, gold)}
    if task.kind == "tagging":
        return chunk_f1(predictions, [example.tags for example in examples], task.span_rule)
    raise ValueError(f"task {task.name}: unknown kind {task.kind!r}")
