"""Fine-tuning metrics against values worked out by hand on small examples."""
import math

import numpy as np
import pytest

from convbert_tf.finetuning import scorers
from convbert_tf.finetuning.examples import Example, QAExample, TaggingExample
from convbert_tf.finetuning.qa import predictions as qa_predictions
from convbert_tf.finetuning.qa import scoring as qa_scoring
from convbert_tf.finetuning.tasks.registry import get_task

# preds vs labels: tp = 2 (0, 4), fp = 1 (1), tn = 1 (2), fn = 1 (3).
PREDS = [1, 1, 0, 0, 1]
LABELS = [1, 0, 0, 1, 1]


def test_accuracy():
    assert scorers.accuracy(PREDS, LABELS) == pytest.approx(60.0)


def test_matthews_binary_by_hand():
    # (tp·tn − fp·fn) / sqrt((tp+fp)(tp+fn)(tn+fp)(tn+fn)) = (2 − 1) / sqrt(3·3·2·2) = 1/6.
    assert scorers.matthews_corrcoef(PREDS, LABELS) == pytest.approx(100.0 / 6.0)
    assert scorers.matthews_corrcoef([0, 1, 1, 0], [0, 1, 1, 0]) == pytest.approx(100.0)
    assert scorers.matthews_corrcoef([1, 0, 0, 1], [0, 1, 1, 0]) == pytest.approx(-100.0)


def test_matthews_constant_prediction_is_zero():
    assert scorers.matthews_corrcoef([1, 1, 1, 1], [0, 1, 1, 0]) == 0.0


def test_matthews_multiclass_by_hand():
    # Confusion (rows gold, cols predicted) [[1, 1, 0], [0, 1, 0], [0, 0, 1]]: c = 3, s = 4,
    # t = [2, 1, 1], p = [1, 2, 1]: (3·4 − (2 + 2 + 1)) / sqrt((16 − 6)(16 − 6)) = 7/10.
    assert scorers.matthews_corrcoef([0, 1, 1, 2], [0, 0, 1, 2]) == pytest.approx(70.0)


def test_f1_binary_by_hand():
    # precision 2/3, recall 2/3.
    assert scorers.f1_binary(PREDS, LABELS) == pytest.approx(100.0 * 2 / 3)
    # precision 1, recall 1/3 -> 0.5. The original's scorer counted gold positives from the
    # predictions (recall 1, F1 100); this is the fixed value.
    assert scorers.f1_binary([1, 0, 0, 0], [1, 1, 1, 0]) == pytest.approx(50.0)
    assert scorers.f1_binary([0, 0], [1, 0]) == 0.0


def test_pearson_by_hand():
    # dx = [-1, 0, 1], dy = [-4/3, -1/3, 5/3]: cov 3, |dx|² 2, |dy|² 14/3 -> sqrt(27/28).
    assert scorers.pearson([1, 2, 3], [1, 2, 4]) == pytest.approx(100.0 * math.sqrt(27 / 28))
    assert scorers.pearson([1, 1, 1], [1, 2, 3]) == 0.0


def test_average_ranks_ties():
    np.testing.assert_allclose(scorers.average_ranks([10, 20, 10, 30, 20]), [1.5, 3.5, 1.5, 5.0, 3.5])


def test_spearman_with_ties_by_hand():
    # ranks x = [1, 2.5, 2.5, 4], y = [1, 3, 2, 4]: cov 4.5, |dx|² 4.5, |dy|² 5 -> sqrt(0.9).
    assert scorers.spearman([1, 2, 2, 3], [1, 3, 2, 4]) == pytest.approx(100.0 * math.sqrt(0.9))
    # Monotone but not linear: Spearman 100, Pearson less.
    assert scorers.spearman([1, 2, 3, 4], [1, 4, 9, 100]) == pytest.approx(100.0)


def test_mse():
    assert scorers.mean_squared_error([1, 2, 3], [1, 2, 5]) == pytest.approx(4 / 3)


def test_length_mismatch_and_empty_are_errors():
    with pytest.raises(ValueError, match="2 predictions for 3"):
        scorers.accuracy([0, 1], [0, 1, 1])
    with pytest.raises(ValueError, match="empty"):
        scorers.pearson([], [])


@pytest.mark.parametrize("text, expected", [
    ("The  Cat!", "cat"),
    ("an apple, a day", "apple day"),
    ("Theater  thEN", "theater then"),
    ("  A-B.C ", "abc"),
    ("the", ""),
    ("Übermensch's", "übermenschs"),
])
def test_normalize_answer(text, expected):
    assert qa_scoring.normalize_answer(text) == expected


def test_exact_and_token_f1():
    assert qa_scoring.exact_match("The  Cat!", "cat") == 1.0
    assert qa_scoring.exact_match("cats", "cat") == 0.0
    # "cat sat on mat" vs "cat on mat": overlap 3, precision 3/4, recall 1 -> 6/7.
    assert qa_scoring.token_f1("the cat sat on the mat", "a cat on a mat") == pytest.approx(6 / 7)
    assert qa_scoring.token_f1("dog", "cat") == 0.0
    assert qa_scoring.token_f1("", "") == 1.0
    assert qa_scoring.token_f1("", "cat") == 0.0
    # Repeated tokens count with multiplicity: "x b b" vs "b b b": overlap 2 -> P 2/3, R 2/3.
    assert qa_scoring.token_f1("x b b", "b b b") == pytest.approx(2 / 3)


def test_squad_scores_max_over_gold():
    answers = {"q1": "The Cat", "q2": "black dog", "q3": "anything"}
    gold = {"q1": ["cat", "dog"], "q2": ["a dog", "the black cat"]}
    # q1: EM 1, F1 1. q2: EM 0; F1 max(2/3 vs "dog", 1/2 vs "black cat") = 2/3. q3 is not gold.
    scores = qa_scoring.squad_scores(answers, gold)
    assert scores == pytest.approx({"exact_match": 50.0, "f1": 100.0 * (1 + 2 / 3) / 2})


def test_squad_scores_missing_prediction_scores_zero():
    assert qa_scoring.squad_scores({}, {"q1": ["cat"]}) == {"exact_match": 0.0, "f1": 0.0}


def _v2_case():
    # a: answerable, right. b: answerable, half right (F1 2/3, EM 0). c, d: unanswerable.
    answers = {"a": "Paris", "b": "sky", "c": "London", "d": "red"}
    gold = {"a": ["Paris"], "b": ["blue sky"], "c": [], "d": []}
    null_odds = {"a": -5.0, "b": -1.0, "c": 0.0, "d": -0.5}
    return answers, gold, null_odds


def test_squad_v2_threshold_and_splits():
    answers, gold, null_odds = _v2_case()
    scores = qa_scoring.squad_v2_scores(answers, gold, null_odds, na_threshold=-2.75)
    # Threshold -2.75: only a is answered (b, c, d blanked): a 1, b 0, c 1, d 1.
    assert scores["exact_match"] == pytest.approx(75.0)
    assert scores["f1"] == pytest.approx(75.0)
    assert scores["HasAns_exact"] == pytest.approx(50.0) and scores["HasAns_total"] == 2
    assert scores["NoAns_exact"] == pytest.approx(100.0) and scores["NoAns_total"] == 2
    assert scores["total"] == 4


def test_squad_v2_best_thresholds_by_hand():
    answers, gold, null_odds = _v2_case()
    scores = qa_scoring.squad_v2_scores(answers, gold, null_odds, na_threshold=-2.75)
    # Sweep in null-odds order a(-5) b(-1) d(-0.5) c(0), starting from "all blank" = 2 (c, d):
    # EM: a +1 -> 3 (best, at -5); b +0; d -1; c -1.  F1: a -> 3; b +2/3 -> 3.667 (best, at -1).
    assert scores["best_exact"] == pytest.approx(75.0) and scores["best_exact_thresh"] == -5.0
    assert scores["best_f1"] == pytest.approx(100.0 * (3 + 2 / 3) / 4) and scores["best_f1_thresh"] == -1.0


def test_squad_v2_best_threshold_moves_ties_together():
    # Equal null odds: answering one means answering both (+1 − 1), so nothing beats "all blank".
    answers = {"q1": "cat", "q2": "dog"}
    gold = {"q1": ["cat"], "q2": []}
    scores = qa_scoring.squad_v2_scores(answers, gold, {"q1": 1.0, "q2": 1.0}, na_threshold=0.0)
    assert scores["best_exact"] == pytest.approx(50.0)
    assert scores["best_exact_thresh"] < 1.0


def test_squad_v2_without_null_odds_scores_final_predictions():
    scores = qa_scoring.squad_v2_scores({"q1": "", "q2": ""}, {"q1": ["cat"], "q2": ["", "the"]})
    # q2's gold answers all normalize to nothing: unanswerable, and "" is right.
    assert scores["exact_match"] == pytest.approx(50.0)
    assert scores["NoAns_exact"] == pytest.approx(100.0) and scores["HasAns_exact"] == 0.0
    assert "best_exact" not in scores


@pytest.mark.parametrize("span_rule", scorers.SPAN_RULES)
def test_tag_spans_read_well_formed_bioes_and_iob_alike(span_rule):
    assert scorers.tag_spans(["B-NP", "I-NP", "E-NP", "O", "S-VP"], span_rule) == [(0, 2, "NP"), (4, 4, "VP")]
    assert scorers.tag_spans(["B-NP", "I-NP", "O", "B-VP", "B-PP", "I-PP"], span_rule) == [
        (0, 1, "NP"), (3, 3, "VP"), (4, 5, "PP")]
    assert scorers.tag_spans(["I-NP", "I-NP", "B-NP", "O"], span_rule) == [(0, 1, "NP"), (2, 2, "NP")]  # IOB1
    assert scorers.tag_spans([], span_rule) == []


def test_tag_spans_conlleval_rule_on_ill_formed_sequences():
    # A type change without B closes the chunk; an I after E starts a new chunk.
    assert scorers.tag_spans(["I-NP", "I-NP", "B-NP", "I-VP"], "conlleval") == [
        (0, 1, "NP"), (2, 2, "NP"), (3, 3, "VP")]
    assert scorers.tag_spans(["B-NP", "E-NP", "I-NP"], "conlleval") == [(0, 1, "NP"), (2, 2, "NP")]
    with pytest.raises(ValueError, match="chunk_span_rule"):
        scorers.tag_spans(["O"], "strict")


def test_iob_to_bioes():
    assert scorers.iob_to_bioes(["B-NP", "I-NP", "O", "B-VP", "B-PP", "I-PP", "I-PP"]) == [
        "B-NP", "E-NP", "O", "S-VP", "B-PP", "I-PP", "E-PP"]
    assert scorers.iob_to_bioes(["I-NP", "I-NP", "B-NP"]) == ["B-NP", "E-NP", "S-NP"]
    assert scorers.iob_to_bioes([]) == []


def test_chunk_f1_by_hand():
    gold = [["B-NP", "E-NP", "O", "S-VP"], ["S-NP", "O"]]
    predicted = [["B-NP", "E-NP", "O", "S-NP"], ["S-NP", "S-PP"]]
    # Gold chunks 3, predicted 4, correct 2 (NP 0-1, NP 0-0): P 1/2, R 2/3, F1 4/7.
    scores = scorers.chunk_f1(predicted, gold)
    assert scores == pytest.approx({"precision": 50.0, "recall": 200.0 / 3, "f1": 400.0 / 7})


def test_chunk_f1_boundary_must_match():
    assert scorers.chunk_f1([["B-NP", "I-NP", "E-NP"]], [["B-NP", "E-NP", "S-NP"]])["f1"] == 0.0


def _examples(task, labels, texts=None):
    return [Example(task, "dev", i, f"dev-{i}", "x", None, label) for i, label in enumerate(labels)]


def test_task_score_metric_names():
    assert get_task("cola").score(_examples("cola", ["1", "0", "0", "1", "1"]), ["1", "1", "0", "0", "1"]) == \
        pytest.approx({"mcc": 100 / 6})
    assert get_task("mrpc").score(_examples("mrpc", ["1", "0", "0", "1", "1"]), [1, 1, 0, 0, 1]) \
        == pytest.approx({"accuracy": 60.0, "f1": 200 / 3})
    assert set(get_task("qqp").score(_examples("qqp", ["0"]), ["0"])) == {"accuracy", "f1"}
    for name in ("sst", "qnli", "rte", "wnli", "mnli"):
        task = get_task(name)
        assert set(task.score(_examples(name, [task.label_list[0]]), [task.label_list[0]])) == {"accuracy"}
    sts = get_task("sts").score(_examples("sts", [1.0, 2.0, 4.0]), [1.0, 2.0, 3.0])
    assert sts == pytest.approx({"pearson": 100 * math.sqrt(27 / 28), "spearman": 100.0, "mse": 1 / 3})


def test_task_score_refuses_unlabelled_test_examples():
    with pytest.raises(ValueError, match="no label"):
        get_task("rte").score(_examples("rte", [None]), ["entailment"])


def _qa_example(qid, answers, index=0, task="squad"):
    return QAExample(task, "dev", index, qid, "q?", "ctx", ("ctx",), (0,), tuple(answers), "", -1, not answers)


def test_task_score_squad_v1_and_v2():
    examples = [_qa_example("a", ["cat"]), _qa_example("b", ["dog"], 1)]
    assert get_task("squadv1").score(examples, {"a": "the cat", "b": "cat"}) == \
        pytest.approx({"exact_match": 50.0, "f1": 50.0})
    predictions = qa_predictions.QAPredictions(predictions={"a": "cat", "b": ""}, best_answers={"a": "cat", "b": "x"},
                                               nbest={}, null_odds={"a": -5.0, "b": 0.0}, na_threshold=-2.75)
    v2 = [_qa_example("a", ["cat"]), _qa_example("b", [], 1)]
    scores = get_task("squad").score(v2, predictions)
    assert scores["exact_match"] == 100.0 and scores["best_exact"] == 100.0
    assert {"HasAns_exact", "HasAns_f1", "NoAns_exact", "NoAns_f1", "best_f1", "best_f1_thresh"} <= set(scores)


def test_task_score_chunk():
    examples = [TaggingExample("chunk", "dev", 0, "dev-1", ("a", "b"), ("S-NP", "S-VP"))]
    assert get_task("chunk").score(examples, [["S-NP", "O"]]) == pytest.approx(
        {"f1": 200 / 3, "precision": 100.0, "recall": 50.0})
