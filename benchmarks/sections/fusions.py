"""One encoder block with and without its fused ops (`ops.reference_math()`), forward + backward.

Legend: B batch, T length, D hidden.
"""

import keras
import numpy as np
import tensorflow as tf

from benchmarks.options import POLICIES, Options, Shapes
from benchmarks.timing import Report, interleaved, median, spread
from benchmarks.workloads import bert_of, block_config
from convbert_tf import ops
from convbert_tf.layers.conv_bert_block import ConvBertBlock

def fusions_section(size: str, options: Options, shapes: Shapes, report: Report, dtype: str):
    """One encoder block of `size`, fwd+bwd in training (dropout on), with and without the fused ops."""
    config = block_config(size, options)
    report.line(f"\n== fused ops: one {size if not options.quick else 'tiny'} encoder block "
                f"(hidden {config.hidden_size}, G {config.linear_groups}), batch {shapes.train_batch} x "
                f"{shapes.seq_length}, fwd+bwd, {dtype} ==")
    policy = POLICIES[dtype]
    keras.utils.set_random_seed(0)
    blocks = {}
    for model, cfg in (("ConvBERT", config), ("BERT", bert_of(config))):
        blocks[model] = ConvBertBlock(
            cfg.hidden_size, cfg.num_attention_heads, cfg.intermediate_size, head_ratio=cfg.head_ratio,
            conv_kernel_size=cfg.conv_kernel_size, conv_type=cfg.conv_type, linear_groups=cfg.linear_groups,
            hidden_act=cfg.hidden_act, hidden_dropout=0.1, attention_dropout=0.1,
            conv_implementation=options.conv_implementation, dtype=policy)
        blocks[model].build((None, None, cfg.hidden_size))
    variants = {"ConvBERT": ("ConvBERT", False, False),
                "ConvBERT, GELU, LayerNorm, dropout unfused": ("ConvBERT", True, False),
                "BERT": ("BERT", False, False),
                "BERT, GELU, LayerNorm, dropout unfused": ("BERT", True, False)}
    if config.linear_groups > 1:
        variants["ConvBERT, grouped FFN as 2 layers"] = ("ConvBERT", False, True)
        variants["ConvBERT, nothing fused"] = ("ConvBERT", True, True)
    with tf.device(options.device):
        hidden = tf.random.normal([shapes.train_batch, shapes.seq_length, config.hidden_size])
        padding_mask = tf.ones([shapes.train_batch, shapes.seq_length], tf.int32)
        # a random direction: the sum of squares of a LayerNorm's output is constant, its gradient 0
        probe = tf.random.normal(hidden.shape)
        steps, outputs = {}, {}
        for name, (model, elementwise, grouped_ffn) in variants.items():
            block = blocks[model]

            @tf.function
            def step(hidden, padding_mask, block=block, evaluate=False):
                with tf.GradientTape() as tape:
                    tape.watch(hidden)
                    output = block(hidden, padding_mask, training=not evaluate)
                    loss = tf.reduce_sum(tf.cast(output, tf.float32) * probe)
                return [output] + tape.gradient(loss, [hidden] + block.trainable_weights)

            with ops.reference_math(elementwise=elementwise, grouped_ffn=grouped_ffn):  # traced here, per `evaluate`
                outputs[name] = [tf.cast(t, tf.float32).numpy() for t in step(hidden, padding_mask, evaluate=True)]
                step(hidden, padding_mask)
            steps[name] = lambda step=step: step(hidden, padding_mask)[1].numpy()
        times = interleaved(steps, options.repeats)
    report.line(f"{'variant':<44}{'ms (median)':>14}{'vs fused':>10}{'max rel diff':>14}")
    for name, (model, _, _) in variants.items():
        # output and every gradient, each relative to its own scale; a gradient that is 0 in exact
        # arithmetic (the key bias's: softmax ignores a constant shift) is measured on the largest's
        floor = 1e-3 * max(float(np.abs(b).max()) for b in outputs[model])
        difference = max(float(np.abs(a - b).max() / max(float(np.abs(b).max()), floor))
                         for a, b in zip(outputs[name], outputs[model]))
        report.line(f"{name:<44}{1e3 * median(times[name]):>9.1f} {spread(times[name]):>4}"
                    f"{median(times[name]) / median(times[model]):>10.2f}{difference:>14.1e}")
    fused_ratio = median(times["ConvBERT"]) / median(times["BERT"])
    plain = "ConvBERT, nothing fused" if config.linear_groups > 1 else "ConvBERT, GELU, LayerNorm, dropout unfused"
    report.line(f"RATIO {size} block time ConvBERT/BERT = {fused_ratio:.2f} fused; "
                f"{median(times[plain]) / median(times['BERT, GELU, LayerNorm, dropout unfused']):.2f} unfused")
