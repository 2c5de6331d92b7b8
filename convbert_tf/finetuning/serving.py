"""What a task needs to build its SavedModel signatures: the context, and the text-in signatures of
sequence tasks.

Legend: B batch, S max_seq_length, D hidden.

Every task's SavedModel has `serving_default` over raw strings, with the tokenizer and the input
packing in the graph (only tensorflow-text ops that stock TF Serving ships), and `serve_ids` over
int32 `input_ids`, `input_mask`, `segment_ids` [B, S]. A task's `serving_functions(context)`
returns the two tf.functions; `export.export_task` writes them.
"""

from __future__ import annotations

import dataclasses

import tensorflow as tf

from convbert_tf import text_inputs

IDS_SIGNATURE = [tf.TensorSpec([None, None], tf.int32, name=k) for k in text_inputs.MODEL_INPUT_KEYS]


def text_spec(name):
    """A batch of strings [B] named `name`."""
    return tf.TensorSpec([None], tf.string, name=name)


@dataclasses.dataclass(frozen=True)
class ServingOptions:
    """The fine-tuning hparams serving applies (QA: as dev post-processing does)."""

    max_seq_length: int = 128
    max_query_length: int = 64
    max_answer_length: int = 30
    qa_na_threshold: float = -2.75
    doc_stride: int = 128
    n_best_size: int = 20
    window_batch_size: int = 32  # QA windows run through the model at a time


@dataclasses.dataclass(frozen=True)
class ServingContext:
    """The pieces of one task's SavedModel.

    Attributes:
      encoder: the fine-tuned encoder. head: the task's head.
      tokenizer: the in-graph WordPiece tokenizer (tracked by the exported module).
      vocab: the vocabulary, a string tensor [V]. labels: the label names, a string tensor [C].
      options: ServingOptions.
    """

    encoder: object
    head: object
    tokenizer: object
    vocab: tf.Tensor
    labels: tf.Tensor
    options: ServingOptions

    def sequence_output(self, inputs):
        """The encoder's states [B, S, D] of packed rows, in inference mode."""
        return self.encoder(inputs, training=False)["sequence_output"]


def text_functions(context: ServingContext, predict, pair: bool, segment_ids_from_mask: bool = False):
    """(serve_ids, serve_text) over `predict(inputs) -> {name: tensor}` of packed rows.

    serve_text takes `sentence` (or `sentence1`, `sentence2` when `pair`), packs them as training
    did (`segment_ids_from_mask`: segment id 1 on every real token) and also returns the packed
    `input_ids`.
    """

    @tf.function(input_signature=IDS_SIGNATURE)
    def serve_ids(input_ids, input_mask, segment_ids):
        return predict({"input_ids": input_ids, "input_mask": input_mask, "segment_ids": segment_ids})

    def with_ids(inputs):
        outputs = predict(inputs)
        outputs["input_ids"] = inputs["input_ids"]
        return outputs

    max_seq_length = context.options.max_seq_length
    if pair:
        @tf.function(input_signature=[text_spec("sentence1"), text_spec("sentence2")])
        def serve_text(sentence1, sentence2):
            inputs, _ = text_inputs.pack_text_inputs(context.tokenizer, sentence1, sentence2,
                                                     max_seq_length=max_seq_length)
            return with_ids(inputs)
    else:
        @tf.function(input_signature=[text_spec("sentence")])
        def serve_text(sentence):
            inputs, _ = text_inputs.pack_text_inputs(context.tokenizer, sentence, max_seq_length=max_seq_length)
            if segment_ids_from_mask:
                inputs = dict(inputs, segment_ids=inputs["input_mask"])
            return with_ids(inputs)
    return serve_ids, serve_text
