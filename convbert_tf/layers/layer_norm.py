"""LayerNorm: Keras's LayerNormalization over the last axis, computed by the XLA-fused op."""

import keras
import tensorflow as tf

from convbert_tf import ops


@keras.saving.register_keras_serializable(package="convbert_tf")
class LayerNorm(keras.layers.LayerNormalization):
    """keras.layers.LayerNormalization (same weights `gamma`/`beta`, same numbers to float
    rounding) whose normalization runs as `ops.layer_norm`: forward and backward each one XLA
    loop instead of a dozen TensorFlow kernels (benchmarks/README.md). Other axes, or
    `center`/`scale` off, fall back to Keras.

    Input [..., W] -> output [..., W] in the compute dtype; half precision is normalized in
    float32.
    """

    def call(self, inputs):
        axes = [axis % len(inputs.shape) for axis in (self.axis if isinstance(self.axis, (list, tuple))
                                                      else [self.axis])]
        if axes != [len(inputs.shape) - 1] or not (self.center and self.scale) or self.rms_scaling:
            return super().call(inputs)
        outputs = ops.layer_norm(inputs, tf.convert_to_tensor(self.gamma), tf.convert_to_tensor(self.beta),
                                 self.epsilon)
        return tf.cast(outputs, self.compute_dtype)
