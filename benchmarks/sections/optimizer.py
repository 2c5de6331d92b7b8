"""One AdamWeightDecay update of an encoder's variables, fused and op by op."""

import functools

import keras
import numpy as np
import tensorflow as tf

from benchmarks.options import Options
from benchmarks.timing import Report, interleaved, median, spread
from benchmarks.workloads import block_config
from convbert_tf import ConvBertEncoder
from convbert_tf.training.optimizer import AdamWeightDecay

def optimizer_section(size: str, options: Options, report: Report):
    """One AdamWeightDecay update (clipping, decay) of a size's encoder variables, fused and op by op."""
    config = block_config(size, options)
    rng = np.random.default_rng(0)
    with tf.device(options.device):
        keras.utils.set_random_seed(0)
        encoder = ConvBertEncoder(config)
        ids = tf.ones([1, 8], tf.int32)
        encoder({"input_ids": ids, "input_mask": ids, "segment_ids": 0 * ids})
        initial = [v.numpy() for v in encoder.trainable_variables]
        grads = [tf.constant(rng.standard_normal(x.shape).astype(np.float32) * 1e-2) for x in initial]
        variables, updates = {}, {}
        for name, fused in (("fused", True), ("op by op", False)):
            variables[name] = [keras.Variable(x, name=f"copy_{i}") for i, x in enumerate(initial)]
            optimizer = AdamWeightDecay(1e-4, fused_update=fused)
            optimizer.build(variables[name])
            # the encoder's decay decisions (the copies' paths name no LayerNorm or bias)
            optimizer._uses_weight_decay = tuple(optimizer.uses_weight_decay(v.path)
                                                 for v in encoder.trainable_variables)
            apply = tf.function(functools.partial(optimizer.apply, grads, variables[name]))
            updates[name] = lambda apply=apply: [apply() for _ in range(5)]
        times = interleaved(updates, options.repeats)
    difference = max(float(np.abs(a.numpy() - b.numpy()).max() / np.abs(b.numpy()).max())
                     for a, b in zip(variables["fused"], variables["op by op"]))
    count = sum(x.size for x in initial)
    size = size if not options.quick else "tiny"
    report.line(f"optimizer update of the {size} encoder's {len(initial)} variables ({count / 1e6:.1f} M "
                f"parameters), after equal steps max rel diff {difference:.1e}:")
    for name in updates:
        report.line(f"  {name:<10}{1e3 * median(times[name]) / 5:>9.1f} ms {spread(times[name]):>4}")
    report.line(f"RATIO {size} optimizer update time fused/op by op = "
                f"{median(times['fused']) / median(times['op by op']):.2f}")
