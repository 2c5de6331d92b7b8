"""The one harness every layer and head of convbert_tf.layers passes.

For each class: the config round trip (every constructor argument comes back from
`get_config`, and `from_config` rebuilds an equal layer), the Keras serialization round trip
(same class, same config, same weight shapes, the same outputs once the weights are copied),
the output shape (and `compute_output_shape` where the layer has one), and the layer's NumPy
twin from tests/numpy_reference.py where one exists. The block, the mixed attention and the
span convolution are checked against their twins through the encoder (tests/test_numerics.py),
under the original variable names.

Legend: B batch, T length, D hidden, E embedding width, V vocab size, C classes.
"""

import dataclasses
from typing import Callable

import keras
import numpy as np
import pytest
import tensorflow as tf

import convbert_tf.layers as layers_module
import numpy_reference as ref
from convbert_tf.layers import (ClassificationHead, ConvBertBlock, ConvBertEmbeddings, GroupedDense, LayerNorm,
                                MaskedLMHead, MixedAttention, QuestionAnsweringHead, ReplacedTokenDetectionHead,
                                SpanDynamicConv, TaggingHead)
from tiny_configs import LAYER_HEADS, LAYER_HIDDEN

RNG = np.random.default_rng(0)
B, T, D, V, E = 2, 5, LAYER_HIDDEN, 30, 8
HIDDEN = tf.constant(RNG.normal(size=(B, T, D)), tf.float32)  # [B, T, D]
QUERY = tf.constant(RNG.normal(size=(B, T, D // 2)), tf.float32)  # [B, T, C], C = D / 2
MASK = tf.constant([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])  # [B, T]
SEGMENTS = tf.constant([[0, 0, 1, 1, 1], [0, 1, 1, 0, 0]])  # [B, T]
IDS = tf.constant([[1, 2, 3, 4, 0], [5, 6, 7, 0, 0]])  # [B, T]


def _embedding_layer():
    layer = ConvBertEmbeddings(V, E, max_position_embeddings=16, name="embeddings")
    layer.build()
    return layer


@dataclasses.dataclass
class Case:
    cls: type
    kwargs: dict
    call: Callable  # layer -> outputs
    shape: tuple  # of the output, or of its "start_logits" for the QA head
    twin: Callable | None = None  # (layer, outputs) -> the NumPy twin's outputs
    build_kwargs: Callable = dict  # constructor arguments that are layers, made fresh per case


def _embeddings_twin(layer, _):
    config = dict(vocab_size=V, hidden_size=E, embedding_size=E, num_hidden_layers=1,
                  num_attention_heads=2, intermediate_size=2 * E, max_position_embeddings=16,
                  type_vocab_size=2, head_ratio=2, conv_kernel_size=3, linear_groups=1, conv_type="sdconv")
    names = {"word_embeddings": layer.word_embeddings, "token_type_embeddings": layer.token_type_embeddings,
             "position_embeddings": layer.position_embeddings, "LayerNorm/gamma": layer.layer_norm.gamma,
             "LayerNorm/beta": layer.layer_norm.beta}
    params = {f"electra/embeddings/{name}": np.asarray(value) for name, value in names.items()}
    return ref.np_embeddings(params, config, IDS.numpy(), SEGMENTS.numpy())


def _grouped_dense_twin(layer, _):
    return ref.np_gelu(ref.np_grouped_linear(HIDDEN.numpy(), layer.kernel.numpy(), layer.bias.numpy()))


def _layer_norm_twin(layer, _):
    return ref.np_layer_norm(HIDDEN.numpy(), layer.gamma.numpy(), layer.beta.numpy(), eps=layer.epsilon)


def _mlm_head_twin(layer, _):
    params = {"generator_predictions/dense/kernel": layer.dense.kernel, "generator_predictions/dense/bias":
              layer.dense.bias, "generator_predictions/LayerNorm/gamma": layer.layer_norm.gamma,
              "generator_predictions/LayerNorm/beta": layer.layer_norm.beta,
              "generator_predictions/output_bias": layer.output_bias}
    params = {name: np.asarray(value) for name, value in params.items()}
    return ref.np_generator_head(HIDDEN.numpy(), params, layer.embedding_layer.word_embeddings.numpy())


def _rtd_head_twin(layer, _):
    params = {"discriminator_predictions/dense/kernel": layer.dense.kernel,
              "discriminator_predictions/dense/bias": layer.dense.bias,
              "discriminator_predictions/dense_1/kernel": layer.dense_1.kernel,
              "discriminator_predictions/dense_1/bias": layer.dense_1.bias}
    return ref.np_discriminator_head(HIDDEN.numpy(), {name: np.asarray(value) for name, value in params.items()})


def _dense_twin(inputs):
    def twin(layer, _):
        return ref.np_dense(inputs, layer.dense.kernel.numpy(), layer.dense.bias.numpy())
    return twin


CASES = [
    Case(ConvBertEmbeddings, dict(vocab_size=V, embedding_size=E, max_position_embeddings=16, type_vocab_size=2,
                                  initializer_range=0.02, dropout_rate=0.1),
         lambda layer: layer(IDS, SEGMENTS), (B, T, E), _embeddings_twin),
    Case(GroupedDense, dict(units=12, groups=3, activation="gelu", initializer_range=0.05),
         lambda layer: layer(HIDDEN), (B, T, 12), _grouped_dense_twin),
    Case(LayerNorm, dict(epsilon=1e-12), lambda layer: layer(HIDDEN), (B, T, D), _layer_norm_twin),
    Case(SpanDynamicConv, dict(num_heads=2, head_size=3, kernel_size=5, initializer_range=0.05, mask_padding=True),
         lambda layer: layer(HIDDEN, QUERY, MASK), (B, T, 6)),
    Case(MixedAttention, dict(hidden_size=D, num_attention_heads=LAYER_HEADS, head_ratio=2, conv_kernel_size=3,
                              conv_type="sdconv", attention_dropout=0.1, initializer_range=0.05),
         lambda layer: layer(HIDDEN, MASK), (B, T, D)),
    Case(ConvBertBlock, dict(hidden_size=D, num_attention_heads=LAYER_HEADS, intermediate_size=24, head_ratio=4,
                             conv_kernel_size=3, linear_groups=2, hidden_act="relu"),
         lambda layer: layer(HIDDEN, MASK), (B, T, D)),
    Case(MaskedLMHead, dict(activation="gelu", initializer_range=0.05), lambda layer: layer(HIDDEN), (B, T, V),
         _mlm_head_twin, build_kwargs=lambda: dict(embedding_layer=_embedding_layer())),
    Case(ReplacedTokenDetectionHead, dict(hidden_size=D, activation="gelu", initializer_range=0.05),
         lambda layer: layer(HIDDEN), (B, T), _rtd_head_twin),
    Case(ClassificationHead, dict(num_classes=3, dropout_rate=0.1),
         lambda layer: layer(HIDDEN[:, 0]), (B, 3), _dense_twin(HIDDEN[:, 0].numpy())),
    Case(TaggingHead, dict(num_tags=4), lambda layer: layer(HIDDEN), (B, T, 4), _dense_twin(HIDDEN.numpy())),
    Case(QuestionAnsweringHead, dict(beam_size=3, joint_prediction=True, answerable_classifier=True,
                                     answerable_uses_start_logits=True, hidden_size=16),
         lambda layer: layer(HIDDEN, MASK, SEGMENTS), (B, T)),
]


def _main(outputs):
    return outputs["start_logits"] if isinstance(outputs, dict) else outputs


def test_every_layer_of_the_package_is_in_the_harness():
    assert sorted(case.cls.__name__ for case in CASES) == sorted(layers_module.__all__)


@pytest.mark.parametrize("case", CASES, ids=[case.cls.__name__ for case in CASES])
def test_layer_passes_the_harness(case):
    layer = case.cls(**case.kwargs, **case.build_kwargs(), name="probe")
    outputs = case.call(layer)
    assert tuple(_main(outputs).shape) == case.shape
    if type(layer).compute_output_shape is not keras.layers.Layer.compute_output_shape:
        input_shape = IDS.shape if case.cls is ConvBertEmbeddings else HIDDEN.shape
        assert tuple(layer.compute_output_shape(tuple(input_shape))) == case.shape

    config = layer.get_config()
    for key, value in case.kwargs.items():
        assert config[key] == value, key
    rebuilt = case.cls.from_config(config)
    assert type(rebuilt) is case.cls and rebuilt.get_config() == config

    clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert type(clone) is case.cls and clone.get_config() == config
    case.call(clone)
    assert [w.shape for w in clone.weights] == [w.shape for w in layer.weights]
    for target, source in zip(clone.weights, layer.weights):
        target.assign(source)
    for got, want in zip(tf.nest.flatten(case.call(clone)), tf.nest.flatten(outputs)):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)

    if case.twin is not None:
        np.testing.assert_allclose(_main(outputs).numpy(), case.twin(layer, outputs), rtol=1e-5, atol=1e-5)
