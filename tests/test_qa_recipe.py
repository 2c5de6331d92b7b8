"""QA recipe: both head modes scored as the original, by hand."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

import convbert_tf
from convbert_tf.data.tokenization import BertTokenizer
from convbert_tf.finetuning import qa
from convbert_tf.finetuning.loop import empty_label_arrays
from convbert_tf.finetuning.model import FinetuningModel, HeadSpec
from convbert_tf.finetuning.tasks import QAExample, get_task

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat", "(", ")", "-", "18", "##95", "19", "##43",
         "sat", "on", "mat", ".", "who", "?", "ca", "##fe", "σ", "ο", "##δ", "##ο", "##ς", "i", "a", "e", "é",
         "##é"]
CONTEXT = "The cat (1895-1943) sat on the mat."
NEG = -10.0


@pytest.fixture(scope="module")
def tokenizer():
    return BertTokenizer(VOCAB)


def example(index, context, question="who sat?", split="dev", answer=None):
    """A QAExample as the reader makes it; `answer` (text, start) for training."""
    words, starts = qa.split_context(context)
    text, start = answer or ("", -1)
    return QAExample(task="squad", split=split, example_index=index, qid=f"{split}{index}", question=question,
                     context=context, doc_words=words, word_starts=starts, answers=(text,) if text else (),
                     answer_text=text, answer_start=start, is_impossible=answer is None and split == "train")


def log_softmax(x):
    shifted = x - x.max(-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))


def logits(rows, length, values):
    """[rows, length] filled with NEG, then values {(row, position): logit}."""
    array = np.full((rows, length), NEG, np.float32)
    for index, value in values.items():
        array[index] = value
    return array


# ----------------------------------------------------------------------------------------------
# Independent start and end (joint_prediction false), and null odds without the classifier.
# One feature at max_seq_length 24: [CLS] who sat ? [SEP] the(5) cat(6) ((7) 18(8) ##95(9) -(10)
# 19(11) ##43(12) )(13) sat(14) on(15) the(16) mat(17) .(18) [SEP](19).


def test_independent_start_end_nbest_by_hand(tokenizer):
    examples = [example(0, CONTEXT)]
    features = get_task("squadv1").featurize(examples, tokenizer, 24, is_training=False)
    # Top 3 starts: 2 (a question token), 8, then 14 before 15 (equal logits: the lower position).
    start = logits(1, 24, {(0, 2): 5.0, (0, 8): 3.0, (0, 14): 2.0, (0, 15): 2.0, (0, 0): 1.0})
    # Top 3 ends: 9, 12, 17.
    end = logits(1, 24, {(0, 9): 2.5, (0, 12): 2.0, (0, 17): 1.5, (0, 0): 0.5})
    result = get_task("squadv1").postprocess(examples, features, {"start_logits": start, "end_logits": end},
                                             n_best_size=3, joint_prediction=False)
    nbest = result.nbest["dev0"]
    # (8, 9) 5.5; (8, 12) 5.0; (8, 17) 4.5; (14, 17) 3.5 is fourth; 14 with ends 9, 12 runs backwards.
    assert [e["text"] for e in nbest] == ["1895", "1895-1943", "1895-1943) sat on the mat"]
    assert [e["start_logit"] for e in nbest] == [3.0, 3.0, 3.0]
    assert [e["end_logit"] for e in nbest] == [2.5, 2.0, 1.5]
    total = sum(math.exp(s) for s in (5.5, 5.0, 4.5))
    assert [e["probability"] for e in nbest] == pytest.approx([math.exp(s) / total for s in (5.5, 5.0, 4.5)])
    assert result.predictions == {"dev0": "1895"} and result.null_odds == {}
    # n_best_size 5 reaches "sat on the mat" (14, 17) but not "on the mat" (15 is the 5th start).
    wider = get_task("squadv1").postprocess(examples, features, {"start_logits": start, "end_logits": end},
                                            n_best_size=5, max_answer_length=9, joint_prediction=False)
    assert [e["text"] for e in wider.nbest["dev0"]] == ["1895", "1895-1943", "sat on the mat", "on the mat"]


@pytest.fixture(scope="module")
def four_spans(tokenizer):
    # max_seq_length 12, doc_stride 3: four features with document positions 5..10 (tests/test_qa.py).
    examples = [example(0, CONTEXT)]
    return examples, get_task("squad").featurize(examples, tokenizer, 12, is_training=False, doc_stride=3)


def test_null_odds_without_classifier_independent_by_hand(four_spans):
    examples, features = four_spans
    assert len(features) == 4
    start = logits(4, 12, {(0, 8): 2.0, (0, 0): 1.0, (1, 0): -0.5, (2, 0): 2.0, (3, 0): 0.0})
    end = logits(4, 12, {(0, 9): 1.5, (0, 0): 0.5, (1, 0): 1.0, (2, 0): -3.0, (3, 0): 0.25})

    def run(end_logits):
        return get_task("squad").postprocess(examples, features, {"start_logits": start, "end_logits": end_logits},
                                             n_best_size=1, joint_prediction=False, answerable_classifier=False)

    # [CLS] sums per feature 1.5, 0.5, -1.0, 0.25: score_null -1.0. Best span (8, 9) "1895" scores
    # 2.0 + 1.5 (the other features' top start is [CLS]). Null odds -1.0 - 2.0 - 1.5 = -4.5.
    result = run(end)
    assert result.null_odds == {"dev0": pytest.approx(-4.5)}
    assert result.predictions == {"dev0": "1895"} and result.best_answers == {"dev0": "1895"}
    # Feature 2's end [CLS] logit 0.0: score_null = min(1.5, 0.5, 2.0, 0.25) = 0.25, odds -3.25.
    end[2, 0] = 0.0
    assert run(end).null_odds == {"dev0": pytest.approx(-3.25)}
    # Sums 1.5, 1.25, 2.0, 1.0: score_null 1.0, odds -2.5 > -2.75: blanked, the best answer kept.
    end[1, 0], end[3, 0] = 1.75, 1.0
    result = run(end)
    assert result.null_odds == {"dev0": pytest.approx(-2.5)}
    assert result.predictions == {"dev0": ""} and result.best_answers == {"dev0": "1895"}


def test_null_odds_without_classifier_joint_by_hand(four_spans):
    examples, features = four_spans
    beams = {"start_top_index": np.array([[8], [0], [0], [0]]), "start_top_log_probs": np.full((4, 1), -0.2),
             "end_top_index": np.array([[[9]], [[0]], [[0]], [[0]]]), "end_top_log_probs": np.full((4, 1, 1), -0.3)}
    start = logits(4, 12, {(0, 0): 1.0, (1, 0): -3.5, (2, 0): 0.0, (3, 0): 2.0})

    def run(outputs):
        return get_task("squad").postprocess(examples, features, dict(beams, **outputs), answerable_classifier=False)

    # The original's end logits are zeros at inference in joint mode: score_null = min start
    # [CLS] logit = -3.5; odds -3.5 - (-0.2) - (-0.3) = -3.0 <= -2.75: answered.
    result = run({"start_logits": start})
    assert result.null_odds == {"dev0": pytest.approx(-3.0)} and result.predictions == {"dev0": "1895"}
    assert result.nbest["dev0"][0]["start_logit"] == pytest.approx(-0.2)
    # End logits, if given, are not read in joint mode.
    assert run({"start_logits": start, "end_logits": np.full((4, 12), 5.0)}).null_odds == result.null_odds
    start[1, 0] = -3.0  # odds -2.5: blanked
    assert run({"start_logits": start}).predictions == {"dev0": ""}
    # No legal span: the best span scores 0 (the original's placeholder), odds = score_null.
    no_span = dict(beams, start_top_index=np.zeros((4, 1), np.int64), start_logits=start)
    result = get_task("squad").postprocess(examples, features, no_span, answerable_classifier=False)
    assert result.null_odds == {"dev0": pytest.approx(-3.0)} and result.best_answers == {"dev0": ""}
    assert result.nbest == {"dev0": []}


def test_outputs_missing_for_the_mode_name_it(four_spans):
    examples, features = four_spans
    with pytest.raises(ValueError, match=r"start_logits \(joint_prediction false\)"):
        get_task("squad").postprocess(examples, features, {"end_logits": np.zeros((4, 12))}, joint_prediction=False,
                                      answerable_classifier=False)
    with pytest.raises(ValueError, match="answerable_logit .SQuAD 2.0 with the answerable classifier"):
        get_task("squad").postprocess(examples, features, {"start_logits": np.zeros((4, 12)),
                                                           "end_logits": np.zeros((4, 12))}, joint_prediction=False)
    with pytest.raises(ValueError, match="do not match 4 features: end_logits has shape"):
        get_task("squad").postprocess(examples, features, {"start_logits": np.zeros((4, 12)),
                                                           "end_logits": np.zeros((3, 12))}, joint_prediction=False,
                                      answerable_classifier=False)


@pytest.mark.parametrize("joint", [True, False])
def test_training_loss_without_classifier(joint):
    """Training in each mode without the answerable classifier: (start CE + end CE) / 2, no answerable term."""
    config = convbert_tf.ConvBertConfig(vocab_size=len(VOCAB), hidden_size=16, num_hidden_layers=1,
                                        num_attention_heads=2, intermediate_size=32, embedding_size=8,
                                        max_position_embeddings=16, conv_kernel_size=3)
    keras.utils.set_random_seed(0)
    model = FinetuningModel(convbert_tf.ConvBertEncoder(config), [HeadSpec("squad", "qa")], beam_size=2,
                            joint_prediction=joint, answerable_classifier=False)
    arrays = empty_label_arrays(2, 8)
    arrays.update(input_ids=np.array([[2, 18, 3, 5, 6, 14, 3, 0]] * 2, np.int32),
                  input_mask=np.array([[1] * 7 + [0]] * 2, np.int32),
                  segment_ids=np.array([[0, 0, 0, 1, 1, 1, 1, 0]] * 2, np.int32),
                  start_positions=np.array([4, 0], np.int32), end_positions=np.array([5, 0], np.int32),
                  is_impossible=np.array([0.0, 1.0], np.float32))
    features = {k: tf.constant(v) for k, v in arrays.items()}
    outputs = model(features, training=True)
    assert "answerable_logit" not in outputs["squad"]
    start = outputs["squad"]["start_logits"].numpy()
    end = outputs["squad"]["end_logits"].numpy()
    assert np.all(start[:, [1, 2, 7]] < -900) and np.all(end[:, [1, 2, 7]] < -900)  # question and padding
    expected = -(log_softmax(start)[[0, 1], [4, 0]] + log_softmax(end)[[0, 1], [5, 0]]) / 2
    np.testing.assert_allclose(model.per_example_losses(features, outputs).numpy(), expected, rtol=1e-5)
    inference = model(features, training=False)["squad"]
    assert ("start_top_index" in inference) == joint and ("end_logits" in inference) == (not joint)

