"""Weight-free tensor math of the layers, with no Keras layers and no weights.

Backend-neutral (keras.ops; import on every Keras backend, no TensorFlow needed):
- `tensors.py`, `masks.py`, `windows.py`: the plain math (shapes, the half-precision upcast,
  the additive padding bias and masked softmax, the span convolution's window unfold); the
  references the fused ops are tested against.
- `shifted.py`: the span convolution's window sum and the key's depthwise convolution as K
  shifted slices (jax.jit fuses them; on tensorflow they are the fused ops' forwards).
- `plain.py`: GELU, bias + GELU and dropout as plain math for jax and torch, and the primitives
  (`einsum`, `matmul`, `take`, `take_rows`, `read`) that stay TensorFlow's own ops on tensorflow.
- `switches.py`: `without_xla()` and `reference_math()`, the switches of the fused paths.

TensorFlow only (imported only when keras.backend.backend() == "tensorflow"):
- `fused.py`: the XLA-fused GELU, bias + GELU, LayerNorm, dropout and the dropout fusions.
- `fused_windows.py`: the window sum and depthwise convolution with hand-written gradients,
  XLA-fused.
- `xla.py`: the machinery those need (the fused-op factory, the RNG choice under XLA, the
  accelerator probe).

`TENSORFLOW` says which set is active; the layers take the fused paths only where it is True.
Importers: `convbert_tf.layers`, the encoder, the models, export, and benchmarks/. The names below
are the package's interface (`ops.gelu(...)`).
"""

from convbert_tf.ops.masks import MASKED_SCORE, attention_bias_from_padding_mask, scaled_softmax
from convbert_tf.ops.plain import TENSORFLOW, einsum, matmul, read, take, take_rows
from convbert_tf.ops.switches import (REFERENCE_PARTS, reference_math, reference_math_active, without_xla,
                                      xla_fusion_allowed)
from convbert_tf.ops.tensors import LAYER_NORM_EPSILON, shape_list, upcast_half
from convbert_tf.ops.windows import unfold_windows

if TENSORFLOW:
    from convbert_tf.ops.fused import (bias_gelu, dropout, dropout_add_layer_norm, gelu, layer_norm,
                                       masked_softmax_dropout)
    from convbert_tf.ops.fused_windows import depthwise_conv1d, shifted_window_sum
    from convbert_tf.ops.xla import (RNG_ALGORITHM, dropout_keep_mask, dropout_seed, fused_op,
                                     host_has_accelerator, in_xla_compilation)
else:
    from convbert_tf.ops.plain import bias_gelu, dropout, gelu, in_xla_compilation
    from convbert_tf.ops.shifted import depthwise_conv1d, shifted_window_sum

_NEUTRAL = ["LAYER_NORM_EPSILON", "MASKED_SCORE", "REFERENCE_PARTS", "TENSORFLOW", "attention_bias_from_padding_mask",
            "bias_gelu", "depthwise_conv1d", "dropout", "einsum", "gelu", "in_xla_compilation", "matmul",
            "read", "reference_math", "reference_math_active", "scaled_softmax", "shape_list", "shifted_window_sum",
            "take", "take_rows", "unfold_windows", "upcast_half", "without_xla", "xla_fusion_allowed"]
_TENSORFLOW_ONLY = ["RNG_ALGORITHM", "dropout_add_layer_norm", "dropout_keep_mask", "dropout_seed", "fused_op",
                    "host_has_accelerator", "layer_norm", "masked_softmax_dropout"]
__all__ = _NEUTRAL + (_TENSORFLOW_ONLY if TENSORFLOW else [])
