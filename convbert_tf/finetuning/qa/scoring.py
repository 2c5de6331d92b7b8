"""Extractive QA scores: SQuAD 1.1 / 2.0 exact match and token F1 (also MRQA's), and SQuAD 2.0's
best thresholds. Every score is a percentage (×100).

Deliberate differences from the official SQuAD scripts:

* SQuAD 2.0 best thresholds treat equal null odds as one step (a threshold answers every question
  whose null odds are ≤ it, so questions with equal odds can only be answered together); the
  official script steps through ties one question at a time.
* Token F1 of two answers that both normalize to nothing is 1.0 (the SQuAD 2.0 rule), for every
  QA task; the v1.1 script gives 0.0 there (only reachable when a gold answer is, e.g., "the").
"""

from __future__ import annotations

import collections
import logging
import re
import string
from typing import Mapping, Sequence

logger = logging.getLogger(__name__)

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
