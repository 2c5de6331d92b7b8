r"""Prototype: the projections that read the hidden state as one matmul (issue #20, CPU lever).

  python -m benchmarks.projections [--sizes small,medium-small,base] [--repeats 7]

In a ConvBERT layer four Dense layers read the same hidden state [B T, D]: query, key, value
(attention) and the span convolution's value, each [D, C]. The span key's pointwise part reads
the depthwise output and the kernel dense reads span_key * query, so they cannot join. This
times, forward and backward (the gradients of the input and of the kernels and biases), the
four matmuls against one [D, 4C] matmul split into four, at batch 16 x 128, and prints the
largest difference of the outputs and gradients (float rounding: the backward input gradient
sums the four products in one matmul) and the time saved per train step (L layers).

Legend: B batch, T length, D hidden, C bottleneck (D / head_ratio), L layers.
"""

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def projection_steps(d: int, c: int, rows: int, parts: int = 4):
    """(four matmuls, one matmul): tf.functions giving the outputs and every gradient, same weights."""
    import numpy as np
    import tensorflow as tf
    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(size=(rows, d)).astype(np.float32))
    upstream = tf.constant(rng.normal(size=(rows, parts * c)).astype(np.float32))
    kernel = rng.normal(0, 0.02, size=(d, parts * c)).astype(np.float32)
    bias = rng.normal(0, 0.02, size=(parts * c,)).astype(np.float32)
    separate = [(tf.Variable(kernel[:, i * c:(i + 1) * c]), tf.Variable(bias[i * c:(i + 1) * c])) for i in range(parts)]
    joined = (tf.Variable(kernel), tf.Variable(bias))

    @tf.function
    def four():
        with tf.GradientTape() as tape:
            tape.watch(x)
            outputs = [tf.matmul(x, w) + b for w, b in separate]
            loss = tf.reduce_sum(tf.concat(outputs, -1) * upstream)
        grads = tape.gradient(loss, [x] + [v for pair in separate for v in pair])
        return outputs, grads[0], tf.concat(grads[1::2], -1), tf.concat(grads[2::2], -1)

    @tf.function
    def one():
        with tf.GradientTape() as tape:
            tape.watch(x)
            outputs = tf.split(tf.matmul(x, joined[0]) + joined[1], parts, axis=-1)
            loss = tf.reduce_sum(tf.concat(outputs, -1) * upstream)
        grads = tape.gradient(loss, [x, *joined])
        return outputs, grads[0], grads[1], grads[2]

    return four, one


def max_relative_difference(a, b) -> float:
    import numpy as np
    a, b = np.concatenate([np.ravel(t) for t in a]), np.concatenate([np.ravel(t) for t in b])
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="small,medium-small,base")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    import tensorflow as tf
    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    from benchmarks.timing import interleaved, median, spread
    from convbert_tf import ConvBertConfig
    for size in args.sizes.split(","):
        config = ConvBertConfig.from_preset(size)
        d, c = config.hidden_size, config.heads.bottleneck_size
        four, one = projection_steps(d, c, 16 * 128)
        difference = max_relative_difference([*four()[0], *four()[1:]], [*one()[0], *one()[1:]])
        times = interleaved({"four": lambda: four()[1].numpy(), "one": lambda: one()[1].numpy()}, args.repeats)
        saved = config.num_hidden_layers * (median(times["four"]) - median(times["one"]))
        print(f"{size}: D {d}, C {c}, 16 x 128 rows: four matmuls {1e3 * median(times['four']):.2f} ms "
              f"{spread(times['four'])}, one {1e3 * median(times['one']):.2f} ms {spread(times['one'])}; "
              f"ratio {median(times['one']) / median(times['four']):.2f}; x {config.num_hidden_layers} layers "
              f"= {1e3 * saved:.0f} ms per train step; max relative difference {difference:.1e}")


if __name__ == "__main__":
    main()
