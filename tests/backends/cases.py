"""The model's numerics on one Keras backend, run as `KERAS_BACKEND=<b> python tests/backends/cases.py OUT [TF_OUT]`.

test_backends.py runs it once per backend, each in its own process (the backend is fixed at import).
TensorFlow is blocked while the model is imported and run (config, ops, layers, encoder, flops must
need none of it); then, TensorFlow unblocked, the checkpoints are written and read through it.

Checks, each against the NumPy twins of tests/numpy_reference.py to 1e-5 in float32 (an
AssertionError fails the run): the encoder for a few configs, the span convolution and the mixed
attention, the MLM and replaced-token heads; the weight gradients (compared across backends);
the `.keras` round trip; on jax, a jax.jit-compiled
stateless call. Writes OUT/outputs.npz (the outputs, for the comparison across backends) and OUT's
checkpoints in both layouts; with TF_OUT (the tensorflow run's OUT) it also loads that run's files.
"""

import os
import sys

if __name__ == "__main__":
    if os.environ.get("KERAS_BACKEND", "tensorflow") != "tensorflow":
        sys.modules["tensorflow"] = None  # the model must import and run without TensorFlow
    HERE = os.path.dirname(os.path.abspath(__file__))
    sys.path[:0] = [os.path.dirname(os.path.dirname(HERE)), os.path.dirname(HERE)]

import keras  # noqa: E402
import numpy as np  # noqa: E402

import numpy_reference as ref  # noqa: E402
from convbert_tf import ConvBertEncoder, flops  # noqa: E402,F401
from convbert_tf.checkpoints.names import (discriminator_head_variable_map, generator_head_variable_map,  # noqa: E402
                                           original_variable_map)
from convbert_tf.layers import MaskedLMHead, QuestionAnsweringHead, ReplacedTokenDetectionHead  # noqa: E402
from tiny_configs import padded_batch, tiny_config  # noqa: E402

ATOL = 1e-5
CONFIGS = {"k3": {}, "k9_groups2": dict(conv_kernel_size=9, linear_groups=2),
           "ratio4_relu": dict(head_ratio=4, hidden_act="relu", embedding_size=None), "noconv": dict(conv_type="noconv")}


def numpy(x):
    return keras.ops.convert_to_numpy(x)


def encoder_with_params(config, seed=0):
    """An encoder whose weights are the NumPy reference's random original-layout parameters."""
    params = ref.random_original_params(ref.original_param_shapes(config.to_dict()), seed)
    encoder = ConvBertEncoder(config)
    for name, variable in original_variable_map(encoder).items():
        variable.assign(params[name])
    return encoder, params


def tensors(batch):
    return {k: keras.ops.convert_to_tensor(v) for k, v in batch.items()}


def check_encoders(outputs):
    for name, changes in sorted(CONFIGS.items()):
        config = tiny_config(**changes)
        encoder, params = encoder_with_params(config)
        batch = padded_batch(config)
        got = encoder(tensors(batch), training=False)["hidden_states"]
        want = ref.np_encoder(params, config.to_dict(), batch["input_ids"], batch["input_mask"], batch["segment_ids"])
        for layer, (g, w) in enumerate(zip(got, want)):
            np.testing.assert_allclose(numpy(g), w, atol=ATOL, rtol=0, err_msg=f"{name} layer {layer}")
        outputs[f"encoder_{name}"] = numpy(got[-1])


def check_attention(outputs):
    config = tiny_config(conv_kernel_size=5, num_hidden_layers=1)
    encoder, params = encoder_with_params(config, seed=3)
    layer_params = ref.get_layer_params(params, "electra", 0)
    mask = padded_batch(config, seed=4)["input_mask"]
    hidden = np.random.default_rng(5).normal(size=(3, 12, 32)).astype(np.float32)
    attention = encoder.blocks[0].attention
    query = attention.query_dense(keras.ops.convert_to_tensor(hidden))
    conv = attention.span_conv(keras.ops.convert_to_tensor(hidden), query, keras.ops.convert_to_tensor(mask))
    np.testing.assert_allclose(numpy(conv), ref.np_span_conv(hidden, numpy(query), layer_params, config.to_dict()),
                               atol=ATOL, rtol=0)
    mixed = attention(keras.ops.convert_to_tensor(hidden), keras.ops.convert_to_tensor(mask))
    np.testing.assert_allclose(numpy(mixed), ref.np_mixed_attention(hidden, mask, layer_params, config.to_dict()),
                               atol=ATOL, rtol=0)
    outputs["span_conv"], outputs["mixed_attention"] = numpy(conv), numpy(mixed)


def check_heads(outputs):
    config = tiny_config()
    encoder, _ = encoder_with_params(config)
    shapes = ref.pretraining_head_shapes(config.to_dict(), config.hidden_size)
    params = ref.random_original_params(shapes, 7)
    hidden = np.random.default_rng(8).normal(size=(3, 12, 32)).astype(np.float32)
    mlm = MaskedLMHead(encoder.embeddings, name="generator_predictions")
    rtd = ReplacedTokenDetectionHead(config.hidden_size, name="discriminator_predictions")
    mlm.build(hidden.shape), rtd.build(hidden.shape)
    for name, variable in {**generator_head_variable_map(mlm), **discriminator_head_variable_map(rtd)}.items():
        variable.assign(params[name])
    words = numpy(encoder.embeddings.word_embeddings)
    np.testing.assert_allclose(numpy(mlm(keras.ops.convert_to_tensor(hidden))),
                               ref.np_generator_head(hidden, params, words), atol=ATOL, rtol=0)
    np.testing.assert_allclose(numpy(rtd(keras.ops.convert_to_tensor(hidden))),
                               ref.np_discriminator_head(hidden, params), atol=ATOL, rtol=0)
    qa = QuestionAnsweringHead(beam_size=3, hidden_size=8)
    qa.build(hidden.shape)
    for variable in qa.weights:  # fixed weights, the same on every backend
        variable.assign(np.random.default_rng(len(variable.path)).normal(size=variable.shape) * 0.3)
    batch = padded_batch(config)
    qa_inputs = tensors({k: batch[k] for k in ("input_mask", "segment_ids")})
    for key, value in qa(keras.ops.convert_to_tensor(hidden), qa_inputs["input_mask"], qa_inputs["segment_ids"]).items():
        outputs[f"qa_{key}"] = numpy(value)


def gradients(encoder, batch, probe):
    """{variable path: d sum(sequence_output * probe) / d variable} by the backend's own autodiff
    (training=False: no dropout, so every backend differentiates the same function)."""
    backend = keras.backend.backend()
    variables = encoder.trainable_variables
    if backend == "jax":
        import jax

        def loss(trainable):
            outputs, _ = encoder.stateless_call(trainable, [v.value for v in encoder.non_trainable_variables],
                                                batch, training=False)
            return (outputs["sequence_output"] * probe).sum()

        grads = jax.grad(loss)([v.value for v in variables])
    elif backend == "torch":
        encoder.zero_grad()
        (encoder(batch, training=False)["sequence_output"] * keras.ops.convert_to_tensor(probe)).sum().backward()
        grads = [v.value.grad for v in variables]
    else:
        import tensorflow as tf

        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(encoder(batch, training=False)["sequence_output"] * probe)
        grads = tape.gradient(loss, variables)
    return {v.path: numpy(g) for v, g in zip(variables, grads)}


def check_gradients(outputs):
    """The encoder's weight gradients, compared across backends by test_backends.py."""
    config = tiny_config(conv_kernel_size=5, linear_groups=2)
    encoder, _ = encoder_with_params(config, seed=13)
    batch = tensors(padded_batch(config))
    probe = np.random.default_rng(14).normal(size=(3, 12, config.hidden_size)).astype(np.float32)
    for path, grad in gradients(encoder, batch, probe).items():
        assert np.all(np.isfinite(grad)), path
        outputs[f"grad_{path}"] = grad


def check_saving(out):
    """`encoder.save(x.keras)` and `keras.saving.load_model` give back the same outputs."""
    config = tiny_config(linear_groups=2)
    encoder, _ = encoder_with_params(config)
    batch = tensors(padded_batch(config))
    path = os.path.join(out, "encoder.keras")
    encoder.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_array_equal(numpy(loaded(batch)["sequence_output"]), numpy(encoder(batch)["sequence_output"]))


def check_jax_jit():
    """On jax: a jax.jit-compiled stateless forward gives the eager outputs."""
    import jax

    encoder, _ = encoder_with_params(tiny_config(conv_kernel_size=9))
    batch = tensors(padded_batch(encoder.config))

    @jax.jit
    def forward(trainable, non_trainable, inputs):
        outputs, _ = encoder.stateless_call(trainable, non_trainable, inputs, training=False)
        return outputs["sequence_output"]

    got = forward([v.value for v in encoder.trainable_variables], [v.value for v in encoder.non_trainable_variables],
                  batch)
    np.testing.assert_allclose(np.asarray(got), numpy(encoder(batch)["sequence_output"]), atol=ATOL, rtol=0)


def check_checkpoints(out, tf_out):
    """Writes both checkpoint layouts from this backend, reads them back, and reads the tensorflow run's."""
    from convbert_tf.checkpoints import (load_encoder, load_original_checkpoint, save_encoder,
                                         save_original_checkpoint)

    config = tiny_config(linear_groups=2)
    encoder, _ = encoder_with_params(config, seed=11)
    batch = tensors(padded_batch(config))
    want = numpy(encoder(batch)["sequence_output"])
    save_original_checkpoint(encoder, os.path.join(out, "original", "model.ckpt"), overwrite=True)
    save_encoder(encoder, os.path.join(out, "native"))
    sources = [out] + ([tf_out] if tf_out else [])
    for source in sources:
        for loaded in (load_original_checkpoint(os.path.join(source, "original"), config),
                       load_encoder(os.path.join(source, "native"))):
            np.testing.assert_allclose(numpy(loaded(batch)["sequence_output"]), want, atol=ATOL, rtol=0,
                                       err_msg=f"checkpoint from {source}")


def main(out, tf_out=None):
    os.makedirs(out, exist_ok=True)
    outputs = {}
    check_encoders(outputs)
    check_attention(outputs)
    check_heads(outputs)
    check_gradients(outputs)
    check_saving(out)
    if keras.backend.backend() == "jax":
        check_jax_jit()
    np.savez(os.path.join(out, "outputs.npz"), **outputs)
    if sys.modules.get("tensorflow", True) is None:
        del sys.modules["tensorflow"]  # the checkpoint files are read and written by TensorFlow
    check_checkpoints(out, tf_out)
    print(f"{keras.backend.backend()}: all cases pass")


if __name__ == "__main__":
    main(*sys.argv[1:])
