"""SavedModel export of a fine-tuned task: raw text in, labels / scores / answers out.

Legend: B batch, S max_seq_length, C classes, K beam size.

Each task's SavedModel has `serving_default` over raw strings, with the tokenizer and the
input packing in the graph (only tensorflow-text ops that stock TF Serving ships), and
`serve_ids` over int32 `input_ids`, `input_mask`, `segment_ids` [B, S]:

  single-sentence classification (cola, sst)   sentence            -> label, label_id, probabilities
  sentence-pair classification (mrpc, ...)     sentence1, sentence2 -> label, label_id, probabilities
  regression (sts)                              sentence1, sentence2 -> score (0..5 scale)
  tagging (chunk)                               sentence            -> tags, tag_ids [B, S] per word piece
                                                (segment id 1 on real tokens, as in training)
  question answering (squad, ...)               question, context    -> answer, start, end, null_odds

QA serving runs every doc-stride window of the context, as dev is scored, and returns the best
span over all windows (`qa_serving`): `answer` is the context's text [start, end) (character
offsets), blanked for SQuAD 2.0 when null_odds exceed qa_na_threshold. Its `serve_ids` takes
one packed window per row and returns the span's word pieces and token positions.
"""

from __future__ import annotations

import tensorflow as tf

from convbert_tf import ops, text_inputs
from convbert_tf.data.tokenization import WordPieceTokenizerModule, read_vocab
from convbert_tf.export import write_saved_model
from convbert_tf.finetuning import qa_serving

SINGLE_SENTENCE_TASKS = ("cola", "sst")
SERVE_IDS_SIGNATURE = "serve_ids"
_IDS_SIGNATURE = [tf.TensorSpec([None, None], tf.int32, name=k) for k in text_inputs.MODEL_INPUT_KEYS]


def _text_spec(name):
    return tf.TensorSpec([None], tf.string, name=name)


@ops.without_xla()  # TF Serving runs graphs without XLA by default
def export_task(model, spec, export_dir, *, vocab_file, label_list=None, do_lower_case=True, strip_accents=True,
                max_seq_length=128, max_query_length=64, max_answer_length=30, qa_na_threshold=-2.75,
                doc_stride=128, n_best_size=20, version_2=False, window_batch_size=32, overwrite=False) -> str:
    """Writes the SavedModel of one task head of a FinetuningModel (see the module docstring).

    QA: max_query_length, doc_stride, n_best_size, max_answer_length and qa_na_threshold as the
    fine-tuning hparams; version_2 for SQuAD 2.0 (null odds); window_batch_size windows run
    through the model at a time. The head's joint_prediction and answerable_classifier decide
    how spans and null odds are scored, as in dev post-processing.
    """
    tokens = read_vocab(vocab_file)
    kind, head = spec.kind, model.head(spec.name)
    encoder = model.encoder
    module = tf.Module(name=f"{spec.name}_export")
    module.variables_list = list(model.variables)
    module.tokenizer = WordPieceTokenizerModule(tokens, do_lower_case, strip_accents)
    module.vocab_file = tf.saved_model.Asset(vocab_file)
    vocab = tf.constant(tokens)
    labels = tf.constant([str(label) for label in (label_list or [])] or [""])

    def predict(inputs):
        sequence_output = encoder(inputs, training=False)["sequence_output"]  # [B, S, D]
        if kind in ("classification", "regression"):
            logits = tf.cast(head(sequence_output[:, 0], training=False), tf.float32)
            if kind == "regression":
                return {"score": logits * 5.0}  # trained on score / 5
            probabilities = tf.nn.softmax(logits, -1)  # [B, C]
            label_id = tf.argmax(probabilities, -1, output_type=tf.int32)  # [B]
            return {"probabilities": probabilities, "label_id": label_id, "label": tf.gather(labels, label_id)}
        tag_ids = tf.argmax(head(sequence_output, training=False), -1, output_type=tf.int32)  # [B, S]
        return {"tag_ids": tag_ids, "tags": tf.gather(labels, tag_ids)}

    @tf.function(input_signature=_IDS_SIGNATURE)
    def serve_ids(input_ids, input_mask, segment_ids):
        return predict({"input_ids": input_ids, "input_mask": input_mask, "segment_ids": segment_ids})

    def with_ids(inputs):
        outputs = predict(inputs)
        outputs["input_ids"] = inputs["input_ids"]
        return outputs

    if kind == "qa":
        qa_config = qa_serving.QAServingConfig(
            max_seq_length=max_seq_length, max_query_length=max_query_length, doc_stride=doc_stride,
            n_best_size=n_best_size, max_answer_length=max_answer_length, na_threshold=qa_na_threshold,
            version_2=version_2, joint_prediction=head.joint_prediction,
            answerable_classifier=head.answerable_classifier, window_batch_size=window_batch_size)
        serve_ids, serve_text = _qa_signatures(encoder, head, module.tokenizer, vocab, qa_config)
    elif kind == "tagging" or spec.name in SINGLE_SENTENCE_TASKS:
        @tf.function(input_signature=[_text_spec("sentence")])
        def serve_text(sentence):
            inputs, _ = text_inputs.pack_text_inputs(module.tokenizer, sentence, max_seq_length=max_seq_length)
            if kind == "tagging":  # trained with segment id 1 on every real token, as the original
                inputs = dict(inputs, segment_ids=inputs["input_mask"])
            return with_ids(inputs)
    else:
        @tf.function(input_signature=[_text_spec("sentence1"), _text_spec("sentence2")])
        def serve_text(sentence1, sentence2):
            inputs, _ = text_inputs.pack_text_inputs(module.tokenizer, sentence1, sentence2,
                                                     max_seq_length=max_seq_length)
            return with_ids(inputs)

    module.serve_ids, module.serve_text = serve_ids, serve_text
    signatures = {"serving_default": serve_text.get_concrete_function(),
                  SERVE_IDS_SIGNATURE: serve_ids.get_concrete_function()}
    return write_saved_model(module, signatures, export_dir, overwrite)


def _qa_signatures(encoder, head, tokenizer, vocab, config: qa_serving.QAServingConfig):
    """The QA task's serve_ids and serve_text functions (see `qa_serving`)."""

    def run_head(inputs):
        sequence_output = encoder(inputs, training=False)["sequence_output"]  # [m, S, D]
        return head(sequence_output, inputs["input_mask"], inputs["segment_ids"], training=False)

    @tf.function(input_signature=_IDS_SIGNATURE)
    def serve_ids(input_ids, input_mask, segment_ids):
        inputs = {"input_ids": input_ids, "input_mask": input_mask, "segment_ids": segment_ids}
        return qa_serving.answer_ids(run_head, vocab, inputs, config)

    @tf.function(input_signature=[_text_spec("question"), _text_spec("context")])
    def serve_text(question, context):
        return qa_serving.answer_text(run_head, tokenizer, vocab, question, context, config)

    return serve_ids, serve_text
