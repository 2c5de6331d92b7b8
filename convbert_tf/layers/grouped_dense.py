"""GroupedDense: the grouped linear (GL) layer of ConvBERT's feed-forward block.

Legend: B batch, T length, G groups, I input width, O output width.
"""

import keras

from convbert_tf import ops
from convbert_tf.layers.activations import get_activation
from convbert_tf.layers.initializers import truncated_normal


@keras.saving.register_keras_serializable(package="convbert_tf")
class GroupedDense(keras.layers.Layer):
    """A dense layer split into G independent groups of contiguous channels (ConvBERT paper, Section 3.3).

    The input's last axis is cut into G contiguous chunks of I/G channels; chunk g is multiplied
    by kernel[g] ([I/G, O/G]); the G results are concatenated in order and a full-width bias
    is added. No channel shuffle. With groups=1 it is a plain dense layer with a [I, O] kernel
    (the original names that variable `dense`, the grouped one `g_dense`).

    Input [..., I] -> output [..., O]. I and O must be divisible by G (the original silently
    floors; here it is an error).

    Args:
      units: O, the output width.
      groups: G.
      activation: 'gelu', 'relu', 'tanh', 'linear' or None.
      initializer_range: stddev of the truncated-normal kernel initializer.
    """

    def __init__(self, units, groups=1, activation=None, initializer_range=0.02, **kwargs):
        super().__init__(**kwargs)
        if groups < 1 or units % groups:
            raise ValueError(f"GroupedDense: units ({units}) must be divisible by groups ({groups})")
        self.units = units
        self.groups = groups
        self.activation = activation
        self.initializer_range = initializer_range
        self._activation_fn = get_activation(activation or "linear")

    def build(self, input_shape):
        in_width = input_shape[-1]
        if in_width % self.groups:
            raise ValueError(
                f"GroupedDense '{self.name}': input width ({in_width}) must be divisible by "
                f"groups ({self.groups})")
        if self.groups == 1:
            kernel_shape = (in_width, self.units)  # [I, O]
        else:
            kernel_shape = (self.groups, in_width // self.groups, self.units // self.groups)  # [G, I/G, O/G]
        self.kernel = self.add_weight(name="kernel", shape=kernel_shape,
                                      initializer=truncated_normal(self.initializer_range))
        self.bias = self.add_weight(name="bias", shape=(self.units,), initializer="zeros")

    def call(self, inputs):
        kernel = keras.ops.cast(self.kernel, self.compute_dtype)
        in_width = inputs.shape[-1]
        # Leading dimensions flattened into one matrix: the gradient of an einsum written with
        # "..." is an order of magnitude slower on CPU than a plain matmul.
        flat = keras.ops.reshape(inputs, [-1, in_width])  # [N, I]
        if self.groups == 1:
            outputs = ops.matmul(flat, kernel)  # [N, O]
        else:
            # G plain matmuls: forward + backward ~10 % faster on CPU (2,048 x 384 <-> 1,536, G 2)
            # than one batched einsum, which transposes [N, G, I/G] to [G, N, I/G] and back.
            chunks = keras.ops.split(flat, self.groups, axis=-1)  # G x [N, I/G]
            outputs = keras.ops.concatenate([ops.matmul(chunk, kernel[g]) for g, chunk in enumerate(chunks)], -1)  # [N, O]
        if self.groups == 1:
            # TensorFlow's graph optimizer folds this add into the matmul (a bias post-op on
            # CPU), faster than adding it inside the GELU loop.
            outputs = outputs + keras.ops.cast(self.bias, self.compute_dtype)
            if self._activation_fn is not None:
                outputs = self._activation_fn(outputs)
        else:
            outputs = _add_bias_and_activate(
                outputs, keras.ops.convert_to_tensor(keras.ops.cast(self.bias, self.compute_dtype)), self)
        leading = ops.shape_list(inputs)[:-1]
        return keras.ops.reshape(outputs, leading + [self.units])  # [..., O]

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.units,)

    def get_config(self):
        config = super().get_config()
        config.update(units=self.units, groups=self.groups, activation=self.activation,
                      initializer_range=self.initializer_range)
        return config


def _add_bias_and_activate(outputs, bias, layer):
    """layer's activation of outputs + bias; GELU takes the bias into its fused loop (one pass
    over the [N, O] tensor each way instead of two)."""
    if layer.activation == "gelu":
        return ops.bias_gelu(outputs, bias)
    outputs = outputs + bias
    return outputs if layer._activation_fn is None else layer._activation_fn(outputs)


def grouped_feed_forward(inputs, first: GroupedDense, second: GroupedDense):
    """second(first(inputs)) for two built GroupedDense layers, the same numbers to float rounding.

    With G = first.groups = second.groups > 1, group g of `second` reads exactly the channels
    that group g of `first` wrote, so the G feed-forward paths never mix: they run as batched
    matmuls in a [G, N, width / G] layout, transposed once on the way in and once on the way
    out, with no split or concatenation of the M-wide intermediate (forward + backward 5-7 %
    faster on CPU than two GroupedDense calls at medium-small size). Otherwise, and under
    `ops.reference_math()`, the layers are simply called.

    inputs [..., I] -> [..., O], through M = first.units intermediate channels.
    """
    groups = first.groups
    if groups == 1 or second.groups != groups or ops.reference_math_active("grouped_ffn"):
        return second(first(inputs))
    in_width, out_width = inputs.shape[-1], second.units
    dtype = first.compute_dtype
    leading = ops.shape_list(inputs)[:-1]
    grouped = keras.ops.transpose(keras.ops.reshape(inputs, [-1, groups, in_width // groups]), [1, 0, 2])  # [G, N, I/G]
    hidden = ops.matmul(grouped, keras.ops.cast(first.kernel, dtype))  # [G, N, M/G]
    first_bias = keras.ops.reshape(keras.ops.cast(first.bias, dtype), [groups, 1, first.units // groups])
    hidden = _add_bias_and_activate(hidden, first_bias, first)
    outputs = ops.matmul(hidden, keras.ops.cast(second.kernel, dtype))  # [G, N, O/G]
    outputs = _add_bias_and_activate(
        outputs, keras.ops.reshape(keras.ops.cast(second.bias, dtype), [groups, 1, out_width // groups]), second)
    outputs = keras.ops.transpose(outputs, [1, 0, 2])  # [N, G, O/G]
    return keras.ops.reshape(outputs, leading + [out_width])  # [..., O]
