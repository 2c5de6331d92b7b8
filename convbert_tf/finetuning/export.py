"""SavedModel export of a fine-tuned task: raw text in, labels / scores / answers out.

Legend: B batch, S max_seq_length, C classes, K beam size.

Each task's SavedModel has `serving_default` over raw strings, with the tokenizer and the
input packing in the graph (only tensorflow-text ops that stock TF Serving ships), and
`serve_ids` over int32 `input_ids`, `input_mask`, `segment_ids` [B, S]. The task's
`serving_functions` makes both:

  single-sentence classification (cola, sst)   sentence            -> label, label_id, probabilities
  sentence-pair classification (mrpc, ...)     sentence1, sentence2 -> label, label_id, probabilities
  regression (sts)                              sentence1, sentence2 -> score (0..5 scale)
  tagging (chunk)                               sentence            -> tags, tag_ids [B, S] per word piece
                                                (segment id 1 on real tokens, as in training)
  question answering (squad, ...)               question, context    -> answer, start, end, null_odds

QA serving runs every doc-stride window of the context, as dev is scored, and returns the best
span over all windows (`qa.serving`): `answer` is the context's text [start, end) (character
offsets), blanked for SQuAD 2.0 when null_odds exceed qa_na_threshold. Its `serve_ids` takes
one packed window per row and returns the span's word pieces and token positions.
"""

from __future__ import annotations

import tensorflow as tf

from convbert_tf import ops
from convbert_tf.data.tokenization import WordPieceTokenizerModule, read_vocab
from convbert_tf.export import write_saved_model
from convbert_tf.finetuning.serving import ServingContext, ServingOptions

SERVE_IDS_SIGNATURE = "serve_ids"


@ops.without_xla()  # TF Serving runs graphs without XLA by default
def export_task(model, task, export_dir, *, vocab_file, do_lower_case=True, strip_accents=True, max_seq_length=128,
                max_query_length=64, max_answer_length=30, qa_na_threshold=-2.75, doc_stride=128, n_best_size=20,
                window_batch_size=32, overwrite=False) -> str:
    """Writes the SavedModel of one task's head of a FinetuningModel (see the module docstring).

    QA: max_query_length, doc_stride, n_best_size, max_answer_length and qa_na_threshold as the
    fine-tuning hparams; window_batch_size windows run through the model at a time. The head's
    joint_prediction and answerable_classifier decide how spans and null odds are scored, as in
    dev post-processing.
    """
    tokens = read_vocab(vocab_file)
    module = tf.Module(name=f"{task.name}_export")
    module.variables_list = list(model.variables)
    module.tokenizer = WordPieceTokenizerModule(tokens, do_lower_case, strip_accents)
    module.vocab_file = tf.saved_model.Asset(vocab_file)
    options = ServingOptions(max_seq_length=max_seq_length, max_query_length=max_query_length,
                             max_answer_length=max_answer_length, qa_na_threshold=qa_na_threshold,
                             doc_stride=doc_stride, n_best_size=n_best_size, window_batch_size=window_batch_size)
    context = ServingContext(encoder=model.encoder, head=model.head(task.name), tokenizer=module.tokenizer,
                             vocab=tf.constant(tokens),
                             labels=tf.constant([str(label) for label in (task.label_list or [])] or [""]),
                             options=options)
    module.serve_ids, module.serve_text = task.serving_functions(context)
    signatures = {"serving_default": module.serve_text.get_concrete_function(),
                  SERVE_IDS_SIGNATURE: module.serve_ids.get_concrete_function()}
    return write_saved_model(module, signatures, export_dir, overwrite)
