"""`python -m convbert_tf`: build a ConvBERT, report its size, run it, round-trip its checkpoint.

  python -m convbert_tf --config=small
  python -m convbert_tf --config=base --checkpoint=convbert_base/   # an original-release checkpoint

Exit code 1: a bad config or checkpoint (the message names it), or an unexpected error (one line;
the traceback is written to a file in the temp directory).
"""

import os
import tempfile
import time

from absl import flags

from convbert_tf.cli.errors import exit_on_error
from convbert_tf.cli.flags import no_extra_arguments, run_app

FLAGS = flags.FLAGS
PROGRAM = "python -m convbert_tf"


def define_flags(flag_values=flags.FLAGS) -> None:
    flags.DEFINE_string("config", "small", "Preset (small, medium-small, base) or a JSON config path.",
                        flag_values=flag_values)
    flags.DEFINE_string("checkpoint", None, "Optional original-release checkpoint (prefix or directory) to load.",
                        flag_values=flag_values)
    flags.DEFINE_integer("batch_size", 2, "Batch size of the demo forward pass.", flag_values=flag_values)
    flags.DEFINE_integer("seq_length", 128, "Sequence length of the demo forward pass.", flag_values=flag_values)


def main(argv):
    no_extra_arguments(argv)
    with exit_on_error(PROGRAM, "building and running a ConvBERT", f"--config {FLAGS.config}"):
        demo(FLAGS.config, FLAGS.checkpoint, FLAGS.batch_size, FLAGS.seq_length)


def build(config_name: str, checkpoint: str | None):
    """The config and encoder: a fresh one, or one read from an original-release checkpoint."""
    import convbert_tf

    config = convbert_tf.config.load_config(config_name)
    if checkpoint:
        return config, convbert_tf.load_original_checkpoint(checkpoint, config)
    return config, convbert_tf.ConvBertEncoder(config)


def demo(config_name: str, checkpoint: str | None, batch_size: int, seq_length: int) -> None:
    import numpy as np
    import tensorflow as tf

    import convbert_tf

    config, encoder = build(config_name, checkpoint)
    heads = config.heads
    print(f"ConvBERT {config_name}: hidden {config.hidden_size}, {config.num_hidden_layers} layers, "
          f"{heads.num_heads} attention + {heads.num_heads} span-conv heads of size {heads.head_size}, "
          f"kernel {config.conv_kernel_size}, {config.linear_groups} FFN group(s)")
    print(f"  parameters: {encoder.count_params():,} "
          f"(embeddings {encoder.embeddings.count_params():,})")

    rng = np.random.default_rng(0)
    shape = (batch_size, seq_length)
    lengths = rng.integers(seq_length // 2, seq_length + 1, size=batch_size)
    input_mask = (np.arange(seq_length)[None] < lengths[:, None]).astype(np.int32)
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
    run_app(main, define_flags, __doc__)
