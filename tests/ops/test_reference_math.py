"""`ops.reference_math()`: the public switch from the fused ops back to the plain math.

Under it the layers compute what the fused paths compute (to float rounding), and a traced
graph holds none of the fused ops: no XLA-compiled function and no custom gradient.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from convbert_tf import ops
from convbert_tf.layers import ConvBertBlock, MaskedLMHead
from convbert_tf.layers.conv_bert_embeddings import ConvBertEmbeddings

RNG = np.random.default_rng(3)
HIDDEN = tf.constant(RNG.normal(size=(2, 7, 16)), tf.float32)  # [B, T, D]
MASK = tf.constant([[1] * 7, [1] * 4 + [0] * 3])  # [B, T]


def _block(implementation="shifted"):
    keras.utils.set_random_seed(1)
    block = ConvBertBlock(16, 4, 32, conv_kernel_size=3, linear_groups=2, hidden_dropout=0.1,
                          attention_dropout=0.1, conv_implementation=implementation)
    block.build(HIDDEN.shape)
    return block


def _output_and_gradients(block, training=False):
    with tf.GradientTape() as tape:
        tape.watch(HIDDEN)
        output = block(HIDDEN, MASK, training=training)
        loss = tf.reduce_sum(output * tf.sin(output))
    return [output] + tape.gradient(loss, [HIDDEN] + block.trainable_weights)


def _fused_op_traces(fn):
    """(names of functions XLA must compile, custom-gradient ops) in fn's traced graph."""
    graph = tf.function(fn).get_concrete_function().graph
    library = graph.as_graph_def().library.function
    compiled = [f.signature.name for f in library if f.attr["_XlaMustCompile"].b]
    custom = [op.name for op in graph.get_operations() if op.type == "IdentityN"]
    custom += [node.name for f in library for node in f.node_def if node.op == "IdentityN"]
    return compiled, custom


@pytest.mark.parametrize("implementation", ["shifted_xla", "unfold"])
def test_block_under_the_switch_equals_the_fused_block(implementation):
    block = _block(implementation)
    fused = tf.function(lambda: _output_and_gradients(block))()
    with ops.reference_math():
        plain = tf.function(lambda: _output_and_gradients(block))()
    for got, want in zip(plain, fused):
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-5, atol=1e-5)


def test_mlm_head_under_the_switch_equals_the_fused_head():
    embeddings = ConvBertEmbeddings(50, 16)
    embeddings.build()
    head = MaskedLMHead(embeddings)
    fused = tf.function(lambda: head(HIDDEN))()
    with ops.reference_math():
        plain = tf.function(lambda: head(HIDDEN))()
    np.testing.assert_allclose(plain.numpy(), fused.numpy(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("training", [False, True])
def test_a_trace_under_the_switch_holds_none_of_the_fused_ops(training):
    block = _block("unfold")  # the span convolution's own reference, as the switch leaves it
    compiled, custom = _fused_op_traces(lambda: _output_and_gradients(block, training))
    assert compiled and custom  # the fused GELU, LayerNorm (and dropouts) by default
    with ops.reference_math():
        assert _fused_op_traces(lambda: _output_and_gradients(block, training)) == ([], [])


def test_parts_switch_separately_and_restore_on_exit():
    assert not ops.reference_math_active("elementwise") and not ops.reference_math_active("grouped_ffn")
    with ops.reference_math(elementwise=False):
        assert ops.reference_math_active("grouped_ffn") and not ops.reference_math_active("elementwise")
        with ops.reference_math(grouped_ffn=False):
            assert ops.reference_math_active("elementwise") and ops.reference_math_active("grouped_ffn")
        assert not ops.reference_math_active("elementwise")
    assert not ops.reference_math_active("grouped_ffn")
    with pytest.raises(ValueError, match="unknown part"):
        ops.reference_math_active("softmax")
