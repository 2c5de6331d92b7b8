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

QA serving reads one window of the context (the first max_seq_length - 3 - |question| word
pieces; the question keeps at most max_query_length) and returns the answer as detokenized
word pieces (lower-cased when the model is uncased) with its token span in `input_ids`.
"""

from __future__ import annotations

import tensorflow as tf

from convbert_tf import ops, text_inputs
from convbert_tf.data.tokenization import WordPieceTokenizerModule, read_vocab
from convbert_tf.export import write_saved_model

SINGLE_SENTENCE_TASKS = ("cola", "sst")
SERVE_IDS_SIGNATURE = "serve_ids"


def _text_spec(name):
    return tf.TensorSpec([None], tf.string, name=name)


@ops.without_xla()  # TF Serving runs graphs without XLA by default
def export_task(model, spec, export_dir, *, vocab_file, label_list=None, do_lower_case=True, strip_accents=True,
                max_seq_length=128, max_query_length=64, max_answer_length=30, qa_na_threshold=-2.75,
                overwrite=False) -> str:
    """Writes the SavedModel of one task head of a FinetuningModel (see the module docstring)."""
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
        if kind == "tagging":
            tag_ids = tf.argmax(head(sequence_output, training=False), -1, output_type=tf.int32)  # [B, S]
            return {"tag_ids": tag_ids, "tags": tf.gather(labels, tag_ids)}
        return _best_answers(head(sequence_output, inputs["input_mask"], inputs["segment_ids"], training=False),
                             inputs["input_ids"], vocab, max_answer_length, qa_na_threshold)

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.int32, name=k) for k in text_inputs.MODEL_INPUT_KEYS])
    def serve_ids(input_ids, input_mask, segment_ids):
        return predict({"input_ids": input_ids, "input_mask": input_mask, "segment_ids": segment_ids})

    def with_ids(inputs):
        outputs = predict(inputs)
        outputs["input_ids"] = inputs["input_ids"]
        return outputs

    if kind == "qa":
        @tf.function(input_signature=[_text_spec("question"), _text_spec("context")])
        def serve_text(question, context):
            return with_ids(_pack_question_context(module.tokenizer, question, context, max_seq_length,
                                                   max_query_length))
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


def _pack_question_context(tokenizer, question, context, max_seq_length, max_query_length):
    """[CLS] question [SEP] context [SEP]: the question cut to max_query_length, the context to what fits."""
    question_ids = tokenizer(question)[:, :max_query_length]  # [B, (Q)]
    room = max_seq_length - 3 - question_ids.row_lengths()  # [B]
    context_ids = text_inputs.keep_first(tokenizer(context), room)  # [B, (C)]
    cls_id, sep_id, pad_id = (text_inputs.special_token_id(tokenizer, token) for token in ("[CLS]", "[SEP]", "[PAD]"))
    inputs, _ = text_inputs.pack_token_ids(question_ids, context_ids, max_seq_length, cls_id, sep_id, pad_id)
    return inputs


def _best_answers(outputs, input_ids, vocab, max_answer_length, qa_na_threshold):
    """The best legal span of the joint beams, as detokenized word pieces, and the null odds."""
    start = outputs["start_top_index"]  # [B, K]
    end = outputs["end_top_index"]  # [B, K, K]
    scores = outputs["start_top_log_probs"][:, :, None] + outputs["end_top_log_probs"]  # [B, K, K]
    starts = tf.broadcast_to(start[:, :, None], tf.shape(end))  # [B, K, K]
    legal = (starts > 0) & (end >= starts) & (end - starts < max_answer_length)  # not [CLS], ordered, short
    scores = tf.where(legal, scores, -1e30)
    flat = tf.argmax(tf.reshape(scores, [tf.shape(scores)[0], -1]), -1, output_type=tf.int32)  # [B]
    best_start = tf.gather(tf.reshape(starts, [tf.shape(starts)[0], -1]), flat, batch_dims=1)  # [B]
    best_end = tf.gather(tf.reshape(end, [tf.shape(end)[0], -1]), flat, batch_dims=1)  # [B]
    positions = tf.range(tf.shape(input_ids)[1])[None]  # [1, S]
    in_span = (positions >= best_start[:, None]) & (positions <= best_end[:, None])  # [B, S]
    pieces = tf.ragged.boolean_mask(tf.gather(vocab, input_ids), in_span)  # [B, (A)]
    text = tf.strings.reduce_join(pieces, axis=-1, separator=" ")
    text = tf.strings.regex_replace(text, " ##", "")
    null_odds = outputs.get("answerable_logit", tf.fill(tf.shape(best_start), -1e30))
    answerable = null_odds <= qa_na_threshold
    return {"answer": tf.where(answerable, text, ""), "start": best_start, "end": best_end,
            "null_odds": tf.cast(null_odds, tf.float32)}
