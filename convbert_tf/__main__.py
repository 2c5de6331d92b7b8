"""`python -m convbert_tf`: build a ConvBERT, report its size, run it, round-trip its checkpoint.

  python -m convbert_tf --config=small
  python -m convbert_tf --config=base --checkpoint=convbert_base/   # an original-release checkpoint
"""

import os
import sys
import tempfile
import time

from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_string("config", "small", "Preset (small, medium-small, base) or a JSON config path.")
flags.DEFINE_string("checkpoint", None, "Optional original-release checkpoint (prefix or directory) to load.")
flags.DEFINE_integer("batch_size", 2, "Batch size of the demo forward pass.")
flags.DEFINE_integer("seq_length", 128, "Sequence length of the demo forward pass.")


def main(argv):
    del argv
    import numpy as np
    import tensorflow as tf

    import convbert_tf
    from convbert_tf.checkpoints import CheckpointError
    from convbert_tf.config import ConfigError

    try:
        config = convbert_tf.config.load_config(FLAGS.config)
        if FLAGS.checkpoint:
            encoder = convbert_tf.load_original_checkpoint(FLAGS.checkpoint, config)
        else:
            encoder = convbert_tf.ConvBertEncoder(config)
    except (ConfigError, CheckpointError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)

    heads = config.heads
    print(f"ConvBERT {FLAGS.config}: hidden {config.hidden_size}, {config.num_hidden_layers} layers, "
          f"{heads.num_heads} attention + {heads.num_heads} span-conv heads of size {heads.head_size}, "
          f"kernel {config.conv_kernel_size}, {config.linear_groups} FFN group(s)")
    print(f"  parameters: {encoder.count_params():,} "
          f"(embeddings {encoder.embeddings.count_params():,})")

    rng = np.random.default_rng(0)
    shape = (FLAGS.batch_size, FLAGS.seq_length)
    lengths = rng.integers(FLAGS.seq_length // 2, FLAGS.seq_length + 1, size=FLAGS.batch_size)
    input_mask = (np.arange(FLAGS.seq_length)[None] < lengths[:, None]).astype(np.int32)
    batch = {"input_ids": tf.constant(rng.integers(1, config.vocab_size, size=shape) * input_mask, tf.int32),
             "input_mask": tf.constant(input_mask), "segment_ids": tf.zeros(shape, tf.int32)}
    forward = tf.function(lambda b: encoder(b, training=False)["sequence_output"])
    output = forward(batch)
    start = time.perf_counter()
    output = forward(batch)
    elapsed = time.perf_counter() - start
    print(f"  forward pass {list(shape)} -> {output.shape.as_list()} in {elapsed * 1000:.0f} ms")

    with tempfile.TemporaryDirectory() as tmp:
        prefix = convbert_tf.save_original_checkpoint(encoder, os.path.join(tmp, "model.ckpt"))
        reloaded = convbert_tf.load_original_checkpoint(tmp, config)
        diff = float(tf.reduce_max(tf.abs(reloaded(batch)["sequence_output"] - output)))
        names = len(tf.train.list_variables(prefix))
    print(f"  original-layout checkpoint: {names} variables written and read back, max |diff| {diff:.1e}")


if __name__ == "__main__":
    app.run(main)
