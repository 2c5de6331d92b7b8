"""Multiply-accumulates per token of ConvBERT / BERT, counted from the config (matmul-like work only).

Legend: T length, D hidden, E embedding width, N heads per branch, H head size, C = N * H,
K kernel size, G groups, I intermediate width, V vocab size, P masked positions per sequence, L layers.

Per encoder layer and token (forward, multiply-accumulates; FLOPs are twice that):
  query, key, value projections           3 D C
  attention scores and values              2 T C
  span conv key: depthwise + pointwise     K D + D C          (sdconv only)
  span conv kernel projection              C N K              (sdconv only)
  span conv value projection               D C                (sdconv only)
  dynamic window sum                       K C                (sdconv only)
  output projection                        W D, W = 2C (sdconv) or C
  grouped feed-forward                     2 D I / G
Per token: E D for the embedding projection (only when E != D) + L x the above.
Heads: the MLM head, per masked position, D_gen E + E V (so P / T of that per token); the
replaced-token-detection head D D + D per token.

A train step counts 3 x the forward (backward = 2 x forward). Softmax, LayerNorm, GELU,
dropout and the optimizer update are not counted: they are memory-bound, not FLOPs-bound.
"""

from convbert_tf.config import ConvBertConfig


def layer_macs(config: ConvBertConfig, seq_length: int) -> dict:
    """Multiply-accumulates per token of one encoder layer, by part."""
    d, heads = config.hidden_size, config.heads
    c, n, k = heads.bottleneck_size, heads.num_heads, config.conv_kernel_size
    parts = {
        "qkv": 3 * d * c,
        "attention": 2 * seq_length * c,
        "output": (2 * c if config.conv_type == "sdconv" else c) * d,
        "ffn": 2 * d * config.intermediate_size // config.linear_groups,
    }
    if config.conv_type == "sdconv":
        parts.update(span_key=k * d + d * c, span_kernel=c * n * k, span_value=d * c, window_sum=k * c)
    return parts


def encoder_macs(config: ConvBertConfig, seq_length: int) -> int:
    """Per token: the embedding projection (if any) and L layers."""
    e, d = config.resolved_embedding_size, config.hidden_size
    projection = e * d if e != d else 0
    return projection + config.num_hidden_layers * sum(layer_macs(config, seq_length).values())


def mlm_head_macs(config: ConvBertConfig, embedding_size: int, vocab_size: int) -> int:
    """Per masked position: dense D -> E, then the tied E -> V output."""
    return config.hidden_size * embedding_size + embedding_size * vocab_size


def mlm_step_flops(config: ConvBertConfig, seq_length: int, predictions: int) -> float:
    """Train FLOPs per token of the encoder + MLM head step (full-size generator, BERT-style)."""
    e = config.resolved_embedding_size
    forward = encoder_macs(config, seq_length) + mlm_head_macs(config, e, config.vocab_size) * predictions / seq_length
    return 3 * 2 * forward


def electra_step_flops(config: ConvBertConfig, generator: ConvBertConfig, seq_length: int,
                       predictions: int) -> float:
    """Train FLOPs per token of the ELECTRA step: generator + MLM head, discriminator + RTD head."""
    e = config.resolved_embedding_size
    forward = (encoder_macs(generator, seq_length)
               + mlm_head_macs(generator, e, config.vocab_size) * predictions / seq_length
               + encoder_macs(config, seq_length)
               + config.hidden_size * config.hidden_size + config.hidden_size)
    return 3 * 2 * forward


def inference_flops(config: ConvBertConfig, seq_length: int) -> float:
    """Forward FLOPs per token of the encoder alone."""
    return 2 * encoder_macs(config, seq_length)


def attention_layer_flops(config: ConvBertConfig, seq_length: int) -> float:
    """Forward + backward FLOPs per token of one (mixed or self-) attention block."""
    parts = layer_macs(config, seq_length)
    parts.pop("ffn")
    return 3 * 2 * sum(parts.values())
