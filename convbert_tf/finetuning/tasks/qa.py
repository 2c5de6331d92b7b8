"""Extractive QA as a task: the span head, its loss, doc-span features, answers, files and signatures.

The head predicts start and end jointly (the end conditioned on the start, a beam of K starts and
K ends per start at inference) and, by default, whether the question is answerable, as the
original's QA head (finetune/qa/qa_tasks.py of google-research/electra, which ConvBERT reuses). Subclasses
read the files: `squad.SquadTask` (SQuAD 1.1 / 2.0 JSON or TFDS), `mrqa.MrqaTask` (MRQA 2019 jsonl).

Legend: B batch, T length.
"""

from __future__ import annotations

import os

import tensorflow as tf

from convbert_tf.finetuning.examples import DataStats
from convbert_tf.finetuning.qa import features as qa_features
from convbert_tf.finetuning.qa import predictions as qa_predictions
from convbert_tf.finetuning.qa import serving as qa_serving
from convbert_tf.finetuning.qa import scoring as qa_scoring
from convbert_tf.finetuning.qa.reading import QuestionReader
from convbert_tf.finetuning.serving import IDS_SIGNATURE, text_spec
from convbert_tf.finetuning.tasks.base import Task
from convbert_tf.layers.question_answering_head import QuestionAnsweringHead


class QATask(Task):
    """An extractive QA task; subclasses read its files (`read_examples`).

    Args:
      name: the original's name.
      version_2: SQuAD 2.0 (unanswerable questions, null odds).
      tfds_name: the TFDS dataset ("squad/v1.1", "squad/v2.0") or None.
    """

    kind = "qa"

    def __init__(self, name: str, version_2: bool = False, tfds_name: str | None = None):
        self.name = name
        self.version_2 = version_2
        self.tfds_name = tfds_name

    def splits(self) -> tuple:
        return ("train", "dev")

    def read_examples(self, data_dir, split, *, tfds_data_dir=None, double_unordered=True, skip_bad_rows=False,
                      skip_bad_answers=False, stats=None):
        """One split (see `Task.read_examples`). Training questions need a usable answer (the first
        SQuAD answer, the first MRQA detected span) unless unanswerable; on other splits a bad
        offset only leaves the answer texts (the gold of scoring) and is counted in
        `stats.unchecked_answers`. Either skip flag skips bad answers.

        Raises:
          DataError: a missing file, invalid JSON (names file and line), a malformed record (names
            where), a repeated question id, or a bad training answer (names the question id).
        """
        self._check_split(split)
        reader = QuestionReader(self, split, skip_bad_answers or skip_bad_rows,
                                stats if stats is not None else DataStats())
        self._read(reader, data_dir, split, tfds_data_dir)
        return reader.examples

    def _read(self, reader: QuestionReader, data_dir, split: str, tfds_data_dir):
        """Feeds every question of the split to `reader`."""
        raise NotImplementedError

    def featurize(self, examples, tokenizer, max_seq_length, is_training, stats=None, **qa_options):
        """qa_options: max_query_length (64), doc_stride (128); see `qa.features.featurize_qa`."""
        return qa_features.featurize_qa(examples, tokenizer, max_seq_length, is_training,
                                        stats=stats if stats is not None else DataStats(), **qa_options)

    def featurize_options(self, hp) -> dict:
        return {"max_query_length": hp.max_query_length, "doc_stride": hp.doc_stride}

    def postprocess(self, examples, features, outputs, **options):
        """options: n_best_size (20), max_answer_length (30), na_threshold (−2.75), joint_prediction,
        answerable_classifier; see `qa.predictions.postprocess_qa`."""
        return qa_predictions.postprocess_qa(examples, features, outputs, version_2=self.version_2, **options)

    def postprocess_options(self, hp) -> dict:
        return dict(n_best_size=hp.n_best_size, max_answer_length=hp.max_answer_length,
                    na_threshold=hp.qa_na_threshold, joint_prediction=hp.joint_prediction,
                    answerable_classifier=hp.answerable_classifier)

    def score(self, examples, predictions) -> dict:
        """exact_match and f1 of a `QAPredictions` (or a plain {qid: text}); SQuAD 2.0 adds the
        extras of `qa.scoring.squad_v2_scores` (best thresholds when there are null odds)."""
        gold = {example.qid: list(example.answers) for example in examples}
        answers = getattr(predictions, "predictions", predictions)
        if not self.version_2:
            return qa_scoring.squad_scores(answers, gold)
        if getattr(predictions, "null_odds", None):
            return qa_scoring.squad_v2_scores(predictions.best_answers, gold, predictions.null_odds,
                                           predictions.na_threshold)
        return qa_scoring.squad_v2_scores(answers, gold)

    # -- model -----------------------------------------------------------------------------------

    def build_head(self, width, dtype, options):
        head = QuestionAnsweringHead(options.beam_size, options.joint_prediction, options.answerable_classifier,
                                     options.answerable_uses_start_logits, dtype=dtype, name=self.name)
        head.build((None, None, width))
        return head

    def head_outputs(self, head, sequence_output, features, training=None):
        return head(sequence_output, features["input_mask"], features["segment_ids"],
                    start_positions=features.get("start_positions"), training=training)

    def per_example_loss(self, features, outputs, options):
        """The mean of the start and end cross-entropies, plus answerable_weight times the
        answerable classifier's sigmoid loss when the head has one."""
        start = tf.nn.sparse_softmax_cross_entropy_with_logits(features["start_positions"], outputs["start_logits"])
        end = tf.nn.sparse_softmax_cross_entropy_with_logits(features["end_positions"], outputs["end_logits"])
        loss = (start + end) / 2.0
        if "answerable_logit" in outputs:
            loss += options.answerable_weight * tf.nn.sigmoid_cross_entropy_with_logits(
                labels=features["is_impossible"], logits=outputs["answerable_logit"])
        return loss

    # -- outputs ---------------------------------------------------------------------------------

    def write_predictions(self, directory, split, examples, predictions) -> str:
        """Writes `<directory>/<task>_<split>/` with predictions.json, nbest_predictions.json and,
        for SQuAD 2.0, null_odds.json (`qa.predictions.write_qa_outputs`). Returns that directory."""
        path = os.path.join(os.fspath(directory), f"{self.name}_{split}")
        qa_predictions.write_qa_outputs(path, predictions)
        return path

    def serving_functions(self, serving_context):
        """serve_text (question, context -> answer, start, end, null_odds over every doc-stride
        window) and serve_ids (one packed window per row -> the span's word pieces); see
        `qa.serving`. The head's joint_prediction and answerable_classifier decide how spans and
        null odds are scored, as in dev post-processing."""
        options, head, encoder = serving_context.options, serving_context.head, serving_context.encoder
        config = qa_serving.QAServingConfig(
            max_seq_length=options.max_seq_length, max_query_length=options.max_query_length,
            doc_stride=options.doc_stride, n_best_size=options.n_best_size,
            max_answer_length=options.max_answer_length, na_threshold=options.qa_na_threshold,
            version_2=self.version_2, joint_prediction=head.joint_prediction,
            answerable_classifier=head.answerable_classifier, window_batch_size=options.window_batch_size)

        def run_head(inputs):
            sequence_output = encoder(inputs, training=False)["sequence_output"]  # [m, S, D]
            return head(sequence_output, inputs["input_mask"], inputs["segment_ids"], training=False)

        @tf.function(input_signature=IDS_SIGNATURE)
        def serve_ids(input_ids, input_mask, segment_ids):
            inputs = {"input_ids": input_ids, "input_mask": input_mask, "segment_ids": segment_ids}
            return qa_serving.answer_ids(run_head, serving_context.vocab, inputs, config)

        @tf.function(input_signature=[text_spec("question"), text_spec("context")])
        def serve_text(question, context):
            return qa_serving.answer_text(run_head, serving_context.tokenizer, serving_context.vocab, question, context,
                                          config)

        return serve_ids, serve_text
