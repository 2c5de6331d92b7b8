"""LayerNorm: Keras's LayerNormalization over the last axis, computed by the XLA-fused op."""

import keras

from convbert_tf import ops


@keras.saving.register_keras_serializable(package="convbert_tf")
class LayerNorm(keras.layers.LayerNormalization):
    """keras.layers.LayerNormalization (same weights `gamma`/`beta`, same numbers to float
    rounding) whose normalization runs as `ops.layer_norm`: forward and backward each one XLA
    loop instead of a dozen TensorFlow kernels (benchmarks/README.md). Other axes, or
    `center`/`scale` off, tracing under `ops.reference_math()`, and the jax and torch backends
use Keras's own normalization.

    Input [..., W] -> output [..., W] in the compute dtype; half precision is normalized in
    float32.
    """

    def fuses(self, rank):
        """Whether inputs of this rank take the fused op (the last axis only, with gamma and beta,
        outside `ops.reference_math()`, on the tensorflow backend)."""
        axes = [axis % rank for axis in (self.axis if isinstance(self.axis, (list, tuple)) else [self.axis])]
        return (ops.TENSORFLOW and axes == [rank - 1] and self.center and self.scale and not self.rms_scaling
                and not ops.reference_math_active("elementwise"))

    def call(self, inputs):
        if not self.fuses(len(inputs.shape)):
            return super().call(inputs)
        outputs = ops.layer_norm(inputs, ops.read(self.gamma), ops.read(self.beta),
                                 self.epsilon)
        return keras.ops.cast(outputs, self.compute_dtype)
