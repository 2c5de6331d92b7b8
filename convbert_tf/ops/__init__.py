"""Weight-free tensor math of the layers, with no Keras layers and no weights.

- `tensors.py`, `masks.py`, `windows.py`: the plain math (shapes, the half-precision upcast,
  the additive padding bias and masked softmax, the span convolution's window unfold); the
  references the fused ops are tested against.
- `fused.py`: the XLA-fused GELU, bias + GELU, LayerNorm, dropout and the dropout fusions.
- `fused_windows.py`: the span convolution's window sum and the key's depthwise convolution
  as shifted slices (a file of their own to keep `fused.py` short).
- `xla.py`: the machinery those need (the fused-op factory, `without_xla()`, the RNG choice
  under XLA, the accelerator probe) and `reference_math()`, the public switch back to the
  plain math.

Importers: `convbert_tf.layers`, the encoder, the models, export, and benchmarks/. This package
imports only TensorFlow. The names below are the package's interface (`ops.gelu(...)`).
"""

from convbert_tf.ops.fused import (bias_gelu, dropout, dropout_add_layer_norm, gelu, layer_norm,
                                   masked_softmax_dropout)
from convbert_tf.ops.fused_windows import depthwise_conv1d, shifted_window_sum
from convbert_tf.ops.masks import MASKED_SCORE, attention_bias_from_padding_mask, scaled_softmax
from convbert_tf.ops.tensors import LAYER_NORM_EPSILON, shape_list, upcast_half
from convbert_tf.ops.windows import unfold_windows
from convbert_tf.ops.xla import (REFERENCE_PARTS, RNG_ALGORITHM, dropout_keep_mask, dropout_seed, fused_op,
                                 host_has_accelerator, in_xla_compilation, reference_math,
                                 reference_math_active, without_xla, xla_fusion_allowed)

__all__ = ["LAYER_NORM_EPSILON", "MASKED_SCORE", "REFERENCE_PARTS", "RNG_ALGORITHM",
           "attention_bias_from_padding_mask", "bias_gelu", "depthwise_conv1d", "dropout",
           "dropout_add_layer_norm", "dropout_keep_mask", "dropout_seed", "fused_op", "gelu",
           "host_has_accelerator", "in_xla_compilation", "layer_norm", "masked_softmax_dropout",
           "reference_math", "reference_math_active", "scaled_softmax", "shape_list",
           "shifted_window_sum", "unfold_windows", "upcast_half", "without_xla", "xla_fusion_allowed"]
