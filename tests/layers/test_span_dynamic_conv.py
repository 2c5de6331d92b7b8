"""Every formulation of the span convolution against the reference 'unfold' formulation.

Legend: B batch, T length, D hidden, N heads, H head size, C = N * H, K kernel size.

Forward outputs and gradients (inputs and every weight) must agree to 1e-5 in float32; under
mixed_bfloat16 the fast paths must stay as close to float32 as the reference does.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from convbert_tf import ConvBertEncoder, ops
from convbert_tf.config import CONV_IMPLEMENTATIONS, ConfigError
from convbert_tf.layers.span_dynamic_conv import IMPLEMENTATIONS, SpanDynamicConv
from tiny_configs import padded_batch, tiny_config

ATOL = 1e-5
FAST = [name for name in IMPLEMENTATIONS if name != "unfold"]


def test_config_and_layer_know_the_same_implementations():
    assert tuple(CONV_IMPLEMENTATIONS) == tuple(IMPLEMENTATIONS)
    with pytest.raises(ValueError, match="'banded'.*use one of"):
        SpanDynamicConv(2, 4, 3, implementation="banded")
    with pytest.raises(ConfigError, match="conv_implementation"):
        tiny_config(conv_implementation="banded")


def _layer_pair(implementation, kernel_size, mask_padding, dtype=None, reference_dtype=None):
    """A reference layer and one with `implementation`, holding the same weights."""
    heads, head_size, hidden_size = 2, 4, 12
    layers = []
    for name, layer_dtype in (("unfold", reference_dtype), (implementation, dtype)):
        layer = SpanDynamicConv(heads, head_size, kernel_size, mask_padding=mask_padding,
                                implementation=name, dtype=layer_dtype)
        layer.build((None, None, hidden_size), (None, None, heads * head_size))
        layers.append(layer)
    rng = np.random.default_rng(7)
    for weight in layers[0].weights:  # non-trivial biases, kernels of unit scale
        weight.assign(rng.normal(scale=0.5, size=weight.shape).astype(np.float32))
    layers[1].set_weights(layers[0].get_weights())
    return layers, hidden_size, heads * head_size


def _inputs(length, hidden_size, channels, seed=11):
    rng = np.random.default_rng(seed)
    hidden = tf.constant(rng.normal(size=(3, length, hidden_size)), tf.float32)  # [B, T, D]
    query = tf.constant(rng.normal(size=(3, length, channels)), tf.float32)  # [B, T, C]
    lengths = np.array([length, max(length - 3, 1), 1])
    padding_mask = tf.constant((np.arange(length)[None] < lengths[:, None]).astype(np.int32))  # [B, T]
    d_output = tf.constant(rng.normal(size=(3, length, channels)), tf.float32)  # [B, T, C]
    return hidden, query, padding_mask, d_output


def _output_and_gradients(layer, hidden, query, padding_mask, d_output):
    with tf.GradientTape() as tape:
        tape.watch([hidden, query])
        output = layer(hidden, query, padding_mask)
        loss = tf.reduce_sum(tf.cast(output, tf.float32) * d_output)
    grads = tape.gradient(loss, [hidden, query] + layer.trainable_weights)
    return [tf.cast(output, tf.float32).numpy()] + [tf.cast(g, tf.float32).numpy() for g in grads]


@pytest.mark.parametrize("mask_padding", [False, True])
@pytest.mark.parametrize("kernel_size,length", [(1, 7), (3, 7), (9, 7), (9, 16)])
@pytest.mark.parametrize("implementation", FAST)
def test_layer_matches_unfold_forward_and_gradients(implementation, kernel_size, length, mask_padding):
    (reference, fast), hidden_size, channels = _layer_pair(implementation, kernel_size, mask_padding)
    inputs = _inputs(length, hidden_size, channels)
    expected = _output_and_gradients(reference, *inputs)
    got = _output_and_gradients(fast, *inputs)
    names = ["output", "d_hidden", "d_query"] + [w.path for w in reference.trainable_weights]
    assert len(got) == len(expected) == 3 + 7  # key conv: depthwise, pointwise, bias; 2 dense x 2
    for name, g, e in zip(names, got, expected):
        if kernel_size > 1:  # (with K = 1 the kernel is softmax of one logit: 1, no gradient)
            assert np.abs(e).max() > 1e-3, name  # every gradient is exercised
        np.testing.assert_allclose(g, e, atol=ATOL, rtol=0, err_msg=name)


@pytest.mark.parametrize("implementation", FAST)
def test_dynamic_shapes_in_a_traced_function(implementation):
    """A serving signature has unknown B and T; the fast paths take them from the tensors."""
    (reference, fast), hidden_size, channels = _layer_pair(implementation, 5, mask_padding=False)
    spec = [tf.TensorSpec([None, None, hidden_size]), tf.TensorSpec([None, None, channels])]
    functions = [tf.function(lambda h, q, layer=layer: layer(h, q), input_signature=spec)
                 for layer in (reference, fast)]
    for length in (3, 10):
        hidden, query, _, _ = _inputs(length, hidden_size, channels, seed=length)
        np.testing.assert_allclose(functions[1](hidden, query).numpy(), functions[0](hidden, query).numpy(),
                                   atol=ATOL, rtol=0)


@pytest.mark.parametrize("implementation", FAST)
def test_mixed_bfloat16_is_as_close_to_float32_as_the_reference(implementation):
    (reference32, _), hidden_size, channels = _layer_pair(implementation, 9, mask_padding=False)
    (unfold16, fast16), _, _ = _layer_pair(implementation, 9, mask_padding=False, dtype="mixed_bfloat16",
                                           reference_dtype="mixed_bfloat16")
    for layer in (unfold16, fast16):
        layer.set_weights(reference32.get_weights())
    inputs = _inputs(16, hidden_size, channels)
    expected = _output_and_gradients(reference32, *inputs)
    reference_error = [np.abs(g - e).max() for g, e in zip(_output_and_gradients(unfold16, *inputs), expected)]
    got = _output_and_gradients(fast16, *inputs)
    assert fast16(*inputs[:2]).dtype == "bfloat16"
    # Both paths round to bfloat16 at different places, so which of the two is closer to
    # float32 on one tensor is a coin toss (either is up to 1.7x the other's error on the small
    # bias gradients, depending on the inputs and the CPU's kernels): each output within 2x
    # the reference's error, and over all outputs together within 1.25x.
    errors = [np.abs(g - e).max() / np.abs(e).max() for g, e in zip(got, expected)]
    reference_errors = [ref_error / np.abs(e).max() for ref_error, e in zip(reference_error, expected)]
    for error, ref_error in zip(errors, reference_errors):
        assert error <= max(2 * ref_error, 2e-2), (errors, reference_errors)
    assert sum(errors) <= 1.25 * sum(reference_errors), (errors, reference_errors)


@pytest.mark.parametrize("mask_padding", [False, True])
@pytest.mark.parametrize("implementation", FAST)
def test_encoder_matches_reference_on_a_padded_batch(implementation, mask_padding):
    config = tiny_config(conv_kernel_size=9, conv_mask_padding=mask_padding, conv_implementation="unfold")
    keras.utils.set_random_seed(3)
    reference = ConvBertEncoder(config)
    fast = ConvBertEncoder(config.replace(conv_implementation=implementation))
    assert fast.blocks[0].attention.span_conv.implementation == implementation
    fast.set_weights(reference.get_weights())
    batch = {k: tf.constant(v) for k, v in padded_batch(config, lengths=(12, 9, 5)).items()}
    results = []
    for encoder in (reference, fast):
        with tf.GradientTape() as tape:
            states = encoder(batch, training=False)["hidden_states"]
            loss = tf.reduce_sum(states[-1] ** 2)
        results.append((states, tape.gradient(loss, encoder.trainable_weights)))
    for got, want in zip(results[1][0], results[0][0]):
        np.testing.assert_allclose(got.numpy(), want.numpy(), atol=ATOL, rtol=0)
    for got, want in zip(results[1][1], results[0][1]):
        got, want = (tf.convert_to_tensor(g).numpy() for g in (got, want))  # embedding grads are sparse
        np.testing.assert_allclose(got, want, atol=1e-4 * max(1.0, np.abs(want).max()), rtol=0)


@pytest.mark.parametrize("mask_padding", [False, True])
@pytest.mark.parametrize("kernel_size,length", [(3, 7), (9, 16)])
def test_layer_in_an_xla_compiled_step_matches_unfold(kernel_size, length, mask_padding):
    """Compiled by XLA (on CPU: the key convolution as shifted slices), outputs and gradients
    match the reference compiled alike."""
    (reference, fast), hidden_size, channels = _layer_pair("shifted_xla", kernel_size, mask_padding)
    inputs = _inputs(length, hidden_size, channels)
    compiled = [tf.function(lambda *a, layer=layer: _traced_output_and_gradients(layer, *a), jit_compile=True)
                for layer in (reference, fast)]
    expected, got = (fn(*inputs) for fn in compiled)
    for g, e in zip(got, expected):
        np.testing.assert_allclose(g.numpy(), e.numpy(), atol=ATOL, rtol=0)
    if not ops.host_has_accelerator():
        op_types = [{op.type for op in fn.get_concrete_function(*inputs).graph.get_operations()} for fn in compiled]
        assert "DepthwiseConv2dNative" in op_types[0] and "DepthwiseConv2dNative" not in op_types[1]


def _traced_output_and_gradients(layer, hidden, query, padding_mask, d_output):
    with tf.GradientTape() as tape:
        tape.watch([hidden, query])
        output = layer(hidden, query, padding_mask)
        loss = tf.reduce_sum(output * d_output)
    return [output] + tape.gradient(loss, [hidden, query] + layer.trainable_weights)
