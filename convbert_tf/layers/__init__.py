"""Keras layers of ConvBERT, one layer per file, each file named after its class; every head
included (MLM, replaced-token detection, classification, question answering, tagging).
`activations.py` and `initializers.py` hold the small non-layer helpers they share.

Written in keras.ops, so they run unchanged on the tensorflow, jax and torch backends; the
TensorFlow/XLA fused paths (`convbert_tf.ops`) are taken only when the backend is tensorflow.

Imports only `convbert_tf.ops` and `convbert_tf.config`; imported by the encoder, the models,
the checkpoint converter, fine-tuning and benchmarks/.
"""

from convbert_tf.layers.classification_head import ClassificationHead
from convbert_tf.layers.conv_bert_block import ConvBertBlock
from convbert_tf.layers.conv_bert_embeddings import ConvBertEmbeddings
from convbert_tf.layers.grouped_dense import GroupedDense
from convbert_tf.layers.layer_norm import LayerNorm
from convbert_tf.layers.masked_lm_head import MaskedLMHead
from convbert_tf.layers.mixed_attention import MixedAttention
from convbert_tf.layers.question_answering_head import QuestionAnsweringHead
from convbert_tf.layers.replaced_token_detection_head import ReplacedTokenDetectionHead
from convbert_tf.layers.span_dynamic_conv import SpanDynamicConv
from convbert_tf.layers.tagging_head import TaggingHead

__all__ = ["ClassificationHead", "ConvBertBlock", "ConvBertEmbeddings", "GroupedDense", "LayerNorm", "MaskedLMHead",
           "MixedAttention", "QuestionAnsweringHead", "ReplacedTokenDetectionHead", "SpanDynamicConv", "TaggingHead"]
