"""SpanDynamicConv: the span-based dynamic convolution heads of ConvBERT (ConvBERT paper, Section 3.2).

Legend: B batch, T length, D hidden (the layer input width), N heads, H head size,
C = N * H channels, K kernel size.
"""

import keras

from convbert_tf import ops
from convbert_tf.config import CONV_IMPLEMENTATIONS, DEFAULT_CONV_IMPLEMENTATION
from convbert_tf.layers.initializers import truncated_normal

# The formulations of the window sum (see the class docstring); 'unfold' is the reference.
IMPLEMENTATIONS = CONV_IMPLEMENTATIONS

@keras.saving.register_keras_serializable(package="convbert_tf")
class SpanDynamicConv(keras.layers.Layer):
    """Span-based dynamic convolution over the layer input, one kernel per position and head.

    As the original release computes it (`model/modeling.py` of yitu-opensource/ConvBert):
      span_key    = SeparableConv1D_K(hidden)           [B, T, C]  (`conv_attn_key`: depthwise
                    [K, D, 1] with 'same' zero padding, no depthwise bias, pointwise [1, D, C] + bias)
      span_kernel = softmax_K(Dense(span_key * query))  [B, T, N, K]  (`conv_attn_kernel`; the
                    query is the attention query, bias included, not scaled by 1/sqrt(H))
      conv_values = Dense(hidden)                       [B, T, C]  (`conv_attn_point`)
      output[t, n] = sum_i span_kernel[t, n, i] * conv_values[t + i - (K-1)/2, n]  [B, T, C]
    with zeros outside 0..T-1. No dropout on the dynamic kernel.

    Masking: by default the padding mask is NOT used, exactly like the original, so the last
    (K-1)/2 real tokens see [PAD] positions and their outputs depend on the amount of padding.
    With `mask_padding=True` padded positions are zeroed in the span-key input and in the conv
    values, which makes real tokens' outputs independent of padding (not in the original).

    Formulations (`implementation`), all giving the same numbers to float rounding:
      'unfold'       the simple reference: the windows are unfolded into a [B, T, C, K] tensor
                     and contracted with the kernel (memory and time grow with K).
      'shifted'      the window sum as K shifted slices of the [B, T, C] values, with a
                     hand-written gradient of the same form (`ops.shifted_window_sum`); nothing
                     of size K x C is built or kept for the backward pass.
      'shifted_xla'  the same, forward and backward each compiled by XLA into one fused loop
                     (the default). Compiles once per input shape; the fastest in training
                     (benchmarks/README.md). Exports trace it as 'shifted' (see `ops.without_xla`).
                     In a step compiled by XLA on a host without GPU or TPU, the key
                     convolution's depthwise step is written as shifted slices too
                     (`ops.depthwise_conv1d`): XLA:CPU's depthwise convolution is slow.

    Args:
      num_heads: N, convolution heads.
      head_size: H, channels per head.
      kernel_size: K, odd.
      initializer_range: stddev for the dense kernels; the depthwise kernel uses 1/K.
      mask_padding: see Masking above.
      implementation: 'unfold' (reference), 'shifted' or 'shifted_xla' (default); see above.

    Call args:
      hidden: [B, T, D] layer input.
      query: [B, T, C] the attention query projection.
      padding_mask: optional [B, T], 1 for real tokens; used only when mask_padding is True.

    Returns:
      [B, T, C] convolution heads, head-major (head n occupies channels n*H ... n*H + H - 1).
    """

    def __init__(self, num_heads, head_size, kernel_size, initializer_range=0.02,
                 mask_padding=False, implementation=DEFAULT_CONV_IMPLEMENTATION, **kwargs):
        super().__init__(**kwargs)
        if implementation not in IMPLEMENTATIONS:
            raise ValueError(f"SpanDynamicConv: unknown implementation {implementation!r}; "
                             f"use one of {IMPLEMENTATIONS}")
        self.implementation = implementation
        if kernel_size < 1 or kernel_size % 2 != 1:
            raise ValueError(f"SpanDynamicConv: kernel_size must be odd and >= 1, got {kernel_size}")
        self.num_heads = num_heads
        self.head_size = head_size
        self.kernel_size = kernel_size
        self.initializer_range = initializer_range
        self.mask_padding = mask_padding
        channels = num_heads * head_size
        self.key_conv = keras.layers.SeparableConv1D(
            channels, kernel_size, padding="same", depth_multiplier=1,
            depthwise_initializer=truncated_normal(1.0 / kernel_size),
            pointwise_initializer=truncated_normal(initializer_range),
            dtype=self.dtype_policy, name="conv_attn_key")
        self.kernel_dense = keras.layers.Dense(
            num_heads * kernel_size, kernel_initializer=truncated_normal(initializer_range),
            dtype=self.dtype_policy, name="conv_attn_kernel")
        self.value_dense = keras.layers.Dense(
            channels, kernel_initializer=truncated_normal(initializer_range),
            dtype=self.dtype_policy, name="conv_attn_point")

    def build(self, hidden_shape, query_shape=None, padding_mask_shape=None):
        self.key_conv.build(hidden_shape)
        self.kernel_dense.build(tuple(hidden_shape[:-1]) + (self.num_heads * self.head_size,))
        self.value_dense.build(hidden_shape)

    def call(self, hidden, query, padding_mask=None):
        batch, length = ops.shape_list(hidden)[:2]
        if self.mask_padding and padding_mask is not None:
            keep = keras.ops.cast(padding_mask, hidden.dtype)[:, :, None]  # [B, T, 1]
            hidden = hidden * keep  # [B, T, D]
        span_key = self._span_key(hidden)  # [B, T, C]
        kernel_logits = self.kernel_dense(span_key * query)  # [B, T, N*K]
        kernel_logits = keras.ops.reshape(kernel_logits, [batch, length, self.num_heads, self.kernel_size])  # [B, T, N, K]
        span_kernel = keras.ops.softmax(ops.upcast_half(kernel_logits), axis=-1)  # softmax in >= float32
        span_kernel = keras.ops.cast(span_kernel, self.compute_dtype)  # [B, T, N, K]

        conv_values = self.value_dense(hidden)  # [B, T, C]
        if self.mask_padding and padding_mask is not None:
            conv_values = conv_values * keep  # [B, T, C]
        if self.implementation == "unfold":
            windows = ops.unfold_windows(conv_values, self.kernel_size)  # [B, T, C, K]
            windows = keras.ops.reshape(windows, [batch, length, self.num_heads, self.head_size, self.kernel_size])  # [B, T, N, H, K]
            conv_out = ops.einsum("BTNHK,BTNK->BTNH", windows, span_kernel)  # [B, T, N, H]
        else:
            conv_values = keras.ops.reshape(conv_values, [batch, length, self.num_heads, self.head_size])  # [B, T, N, H]
            conv_out = ops.shifted_window_sum(conv_values, span_kernel,
                                              jit_compile=self.implementation == "shifted_xla")  # [B, T, N, H]
        return keras.ops.reshape(conv_out, [batch, length, self.num_heads * self.head_size])  # [B, T, C]

    def _span_key(self, hidden):
        """The separable key convolution, [B, T, D] -> [B, T, C]. 'shifted_xla' under XLA
        compilation on a host without GPU or TPU (tensorflow only): the depthwise step as shifted slices
        (`ops.depthwise_conv1d`; XLA:CPU's depthwise convolution is several times slower),
        then the pointwise matmul and bias, with the layer's own weights. Otherwise the Keras
        layer."""
        if not (ops.TENSORFLOW and self.implementation == "shifted_xla" and ops.xla_fusion_allowed()
                and ops.in_xla_compilation() and not ops.host_has_accelerator()):
            return self.key_conv(hidden)
        conv = self.key_conv
        depthwise = keras.ops.cast(conv.depthwise_kernel[:, :, 0], hidden.dtype)  # [K, D]
        pointwise = keras.ops.cast(conv.pointwise_kernel[0], hidden.dtype)  # [D, C]
        mixed = keras.ops.tensordot(ops.depthwise_conv1d(hidden, depthwise), pointwise, axes=1)  # [B, T, C]
        return mixed + keras.ops.cast(conv.bias, hidden.dtype)

    def compute_output_shape(self, hidden_shape, query_shape=None, padding_mask_shape=None):
        return tuple(hidden_shape[:-1]) + (self.num_heads * self.head_size,)

    def get_config(self):
        config = super().get_config()
        config.update(num_heads=self.num_heads, head_size=self.head_size, kernel_size=self.kernel_size,
                      initializer_range=self.initializer_range, mask_padding=self.mask_padding,
                      implementation=self.implementation)
        return config
