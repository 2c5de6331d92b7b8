"""Keras layers of ConvBERT: one concept per file."""

from convbert_tf.layers.embeddings import ConvBertEmbeddings
from convbert_tf.layers.encoder_block import ConvBertBlock
from convbert_tf.layers.grouped_dense import GroupedDense
from convbert_tf.layers.layer_norm import LayerNorm
from convbert_tf.layers.mixed_attention import MixedAttention
from convbert_tf.layers.mlm_head import MaskedLMHead
from convbert_tf.layers.rtd_head import ReplacedTokenDetectionHead
from convbert_tf.layers.span_conv import SpanDynamicConv
from convbert_tf.layers.classification_head import ClassificationHead
from convbert_tf.layers.qa_head import QuestionAnsweringHead
from convbert_tf.layers.tagging_head import TaggingHead

__all__ = ["ClassificationHead", "ConvBertBlock", "ConvBertEmbeddings", "GroupedDense", "LayerNorm", "MaskedLMHead", "MixedAttention",
           "QuestionAnsweringHead", "ReplacedTokenDetectionHead", "SpanDynamicConv", "TaggingHead"]
