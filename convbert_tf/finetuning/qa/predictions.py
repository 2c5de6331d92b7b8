"""Extractive QA post-processing: the model's span scores to answers, n-best lists and null odds.

Legend: N features, K beam size (start candidates, and end candidates per start).

Post-processing, as the original's two head modes:

* joint_prediction (the default): per feature, the head's K start candidates and K end
  candidates per start (beam search); a candidate scores start_log_prob + end_log_prob.
* independent start and end: per feature, the n_best_size largest start logits and the
  n_best_size largest end logits, every pair of them; a pair scores start_logit + end_logit.

A (start, end) pair is kept when both are document tokens of that feature, the start has its
max context there, end ≥ start and the span has at most max_answer_length sub-tokens. Pairs
from all of a question's features are ranked by their score (ties keep feature, start, end
order), duplicates of the same text dropped, the first n_best_size kept, and their
probabilities are a softmax over the score. The n-best entries keep the original's field names
`start_logit` and `end_logit`, which hold the beam's log-probabilities in joint mode.

SQuAD 2.0 null odds (higher = more likely unanswerable), minimum over the question's features:
* answerable_classifier (the default): the head's logit of "unanswerable" (the target of its
  sigmoid loss is is_impossible), min over features.
* without it: score_null − start_logit − end_logit of the best span, where score_null is the
  minimum over features of start_logits[0] + end_logits[0], the [CLS] logits. In joint mode
  the original's end logits are zeros at inference, so there score_null is the minimum
  start_logits[0]. With no valid span the best span's score counts as 0 (the original's
  placeholder answer).

A question's final prediction is "" when null_odds > na_threshold (the original's
qa_na_threshold, −2.75), else its best span.
"""

from __future__ import annotations

import collections
import dataclasses
import math
import os
from typing import Any, Mapping, Sequence

import numpy as np

from convbert_tf.finetuning.examples import QAExample, QAFeature
from convbert_tf.io import atomic_write_json


@dataclasses.dataclass
class QAPredictions:
    """Predictions for one split of a QA task.

    Attributes:
      predictions: qid → final answer text ("" = no answer: SQuAD 2.0 null_odds > na_threshold,
        or no valid span).
      best_answers: qid → the best span's text before the null threshold ("" if none).
      nbest: qid → up to n_best_size entries {text, probability, start_logit, end_logit}, best
        first (in joint mode start_logit and end_logit are the beam's log-probabilities).
      null_odds: qid → null odds (SQuAD 2.0 only, else empty); higher = more likely unanswerable.
      na_threshold: the threshold applied (SQuAD 2.0), else None.
    """

    predictions: dict
    best_answers: dict
    nbest: dict
    null_odds: dict
    na_threshold: float | None = None


_BEAM_OUTPUTS = ("start_top_log_probs", "start_top_index", "end_top_log_probs", "end_top_index")
_LOGIT_OUTPUTS = ("start_logits", "end_logits")


def _softmax(scores: Sequence[float]) -> list[float]:
    if not scores:
        return []
    top = max(scores)
    exps = [math.exp(s - top) for s in scores]
    total = sum(exps)
    return [e / total for e in exps]


def _best_indexes(logits: np.ndarray, n_best_size: int) -> np.ndarray:
    """The positions of the n_best_size largest logits, largest first (ties: lower position first)."""
    return np.argsort(-logits, kind="stable")[:n_best_size]


def _check_outputs(outputs: Mapping[str, Any], n_features: int, version_2: bool, joint_prediction: bool,
                   answerable_classifier: bool) -> dict:
    """The outputs the mode reads, as arrays; raises ValueError naming what is missing or misshaped."""
    needed = {key: "joint_prediction" for key in _BEAM_OUTPUTS} if joint_prediction else \
        {key: "joint_prediction false" for key in _LOGIT_OUTPUTS}
    if version_2 and answerable_classifier:
        needed["answerable_logit"] = "SQuAD 2.0 with the answerable classifier"
    elif version_2:
        needed.setdefault("start_logits", "SQuAD 2.0 without the answerable classifier")
    missing = [f"{key} ({why})" for key, why in needed.items() if key not in outputs]
    if missing:
        raise ValueError(f"QA outputs lack {', '.join(missing)}; were they made by a head of these hparams?")
    arrays = {key: np.asarray(outputs[key], np.int64 if key.endswith("index") else np.float64) for key in needed}
    expected = {"start_top_log_probs": 2, "start_top_index": 2, "end_top_log_probs": 3, "end_top_index": 3,
                "start_logits": 2, "end_logits": 2, "answerable_logit": 1}
    for key, array in arrays.items():
        if array.ndim != expected[key] or array.shape[0] != n_features:
            raise ValueError(f"QA outputs do not match {n_features} features: {key} has shape {array.shape}, not "
                             f"{expected[key]} dimensions with one row per feature")
    if joint_prediction and (arrays["start_top_index"].shape != arrays["start_top_log_probs"].shape or
                             arrays["end_top_index"].shape != arrays["end_top_log_probs"].shape or
                             arrays["end_top_index"].shape[:2] != arrays["start_top_index"].shape):
        raise ValueError(f"QA outputs {arrays['start_top_index'].shape} / {arrays['end_top_index'].shape} do not "
                         f"match {n_features} features with [N, K] starts and [N, K, K] ends")
    return arrays


def _feature_pairs(arrays: Mapping[str, np.ndarray], row: int, joint_prediction: bool, n_best_size: int):
    """The candidate (start, end, start_score, end_score) of feature `row`, in the original's order."""
    if joint_prediction:
        for i, start in enumerate(arrays["start_top_index"][row]):
            for j, end in enumerate(arrays["end_top_index"][row, i]):
                yield (int(start), int(end), arrays["start_top_log_probs"][row, i],
                       arrays["end_top_log_probs"][row, i, j])
        return
    start_logits, end_logits = arrays["start_logits"][row], arrays["end_logits"][row]  # [T] each
    ends = _best_indexes(end_logits, n_best_size)
    for start in _best_indexes(start_logits, n_best_size):
        for end in ends:
            yield int(start), int(end), start_logits[start], end_logits[end]


def _candidates(arrays, features, rows, joint_prediction, n_best_size, max_answer_length) -> list:
    """Valid spans of a question's features as (score, start_score, end_score, row, start, end), best first."""
    candidates = []
    for row in rows:
        feature = features[row]
        for start, end, start_score, end_score in _feature_pairs(arrays, row, joint_prediction, n_best_size):
            if (start not in feature.token_to_orig_map or end not in feature.token_to_orig_map or
                    not feature.token_is_max_context.get(start, False) or end < start or
                    end - start + 1 > max_answer_length):
                continue
            candidates.append((start_score + end_score, start_score, end_score, row, start, end))
    candidates.sort(key=lambda c: c[0], reverse=True)  # stable: ties keep feature, start, end order
    return candidates


def _nbest(example: QAExample, features, candidates, n_best_size: int) -> list[dict]:
    """The first n_best_size candidates of distinct text, with softmax probabilities over their scores."""
    nbest, seen = [], set()
    for score, start_score, end_score, row, start, end in candidates:
        if len(nbest) >= n_best_size:
            break
        char_spans = features[row].token_char_spans
        text = example.context[char_spans[start][0] : char_spans[end][1]]
        if text in seen:
            continue
        seen.add(text)
        nbest.append({"text": text, "score": score, "start_logit": float(start_score),
                      "end_logit": float(end_score)})
    for entry, probability in zip(nbest, _softmax([e.pop("score") for e in nbest])):
        entry["probability"] = probability
    return [{k: e[k] for k in ("text", "probability", "start_logit", "end_logit")} for e in nbest]


def _null_odds(arrays, rows, best: dict | None, joint_prediction: bool, answerable_classifier: bool) -> float:
    """A SQuAD 2.0 question's null odds from its features' rows (see the module docstring)."""
    if answerable_classifier:
        return float(min(arrays["answerable_logit"][row] for row in rows))
    end_null = (lambda row: 0.0) if joint_prediction else (lambda row: arrays["end_logits"][row, 0])
    score_null = min(arrays["start_logits"][row, 0] + end_null(row) for row in rows)
    best_start, best_end = (best["start_logit"], best["end_logit"]) if best is not None else (0.0, 0.0)
    return float(score_null - best_start - best_end)


def postprocess_qa(examples: Sequence[QAExample], features: Sequence[QAFeature], outputs: Mapping[str, Any],
                   version_2: bool = False, n_best_size: int = 20, max_answer_length: int = 30,
                   na_threshold: float = -2.75, joint_prediction: bool = True,
                   answerable_classifier: bool = True) -> QAPredictions:
    """The model's outputs to answers (see the module docstring).

    Args:
      examples: the split's QAExamples.
      features: their QAFeatures, every example with at least one.
      outputs: arrays in feature order. joint_prediction: start_top_log_probs [N, K],
        start_top_index [N, K], end_top_log_probs [N, K, K], end_top_index [N, K, K] (row i:
        the end candidates of start candidate i); else start_logits and end_logits [N, T].
        SQuAD 2.0 also reads answerable_logit [N] (the logit of "unanswerable") with the
        answerable classifier, start_logits [N, T] without it.
      version_2: compute null odds and blank answers above `na_threshold`.
      n_best_size, max_answer_length: as the original (20, 30 sub-tokens).
      na_threshold: the original's qa_na_threshold.
      joint_prediction, answerable_classifier: the head's hparams.
    """
    arrays = _check_outputs(outputs, len(features), version_2, joint_prediction, answerable_classifier)
    rows_of = collections.defaultdict(list)
    for row, feature in enumerate(features):
        rows_of[feature.example_index].append(row)
    result = QAPredictions({}, {}, {}, {}, na_threshold if version_2 else None)
    for example in examples:
        rows = rows_of.get(example.example_index)
        if not rows:
            raise ValueError(f"question {example.qid} (example {example.example_index}) has no features")
        candidates = _candidates(arrays, features, rows, joint_prediction, n_best_size, max_answer_length)
        nbest = _nbest(example, features, candidates, n_best_size)
        best = next((entry for entry in nbest if entry["text"]), None)  # the original's best non-null entry
        result.nbest[example.qid] = nbest
        result.best_answers[example.qid] = best["text"] if best is not None else ""
        result.predictions[example.qid] = result.best_answers[example.qid]
        if version_2:
            null_odds = _null_odds(arrays, rows, best, joint_prediction, answerable_classifier)
            result.null_odds[example.qid] = null_odds
            if null_odds > na_threshold:
                result.predictions[example.qid] = ""
    return result


def write_qa_outputs(output_dir, predictions: QAPredictions) -> dict[str, str]:
    """Writes predictions.json ({qid: text}), nbest_predictions.json and, for SQuAD 2.0,
    null_odds.json into `output_dir` (each atomically). Returns {file name: path}."""
    output_dir = os.fspath(output_dir)
    files = {"predictions.json": predictions.predictions, "nbest_predictions.json": predictions.nbest}
    if predictions.na_threshold is not None:
        files["null_odds.json"] = predictions.null_odds
    return {name: atomic_write_json(os.path.join(output_dir, name), content) for name, content in files.items()}
