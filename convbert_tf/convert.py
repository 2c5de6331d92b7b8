"""Converts checkpoints between the original release's TF1 layout and this project's TF2 layout.

  python -m convbert_tf.convert --input=convbert_small/ --config=small --output=converted/small
  python -m convbert_tf.convert --direction=to_original --input=converted/small \
      --output=exported/model.ckpt

to_tf2 writes `<output>/ckpt-<step>` (the encoder) and `<output>/config.json`; to_original
writes a TF1 name-based checkpoint with the original names, readable by the original code and
its converters. Generator and head weights in an original pretraining checkpoint are not
needed by the encoder; continued pretraining reads the original checkpoint directly. Exit code
1: a bad input (the message names it) or an unexpected error (one line; the traceback is written
to a file in the temp directory).
"""

import os

from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_enum("direction", "to_tf2", ["to_tf2", "to_original"],
                  "to_tf2: original TF1 checkpoint -> this project's; to_original: the reverse.")
flags.DEFINE_string("input", None, "Checkpoint prefix, or a directory with a `checkpoint` state file.")
flags.DEFINE_string("config", None,
                    "Preset name (small, medium-small, base) or JSON config in the BertConfig or "
                    "original --hparams form. Required for to_tf2; for to_original defaults to the "
                    "config.json beside the input checkpoint.")
flags.DEFINE_string("output", None, "to_tf2: output directory. to_original: output checkpoint prefix.")
flags.DEFINE_bool("overwrite", False, "Replace an existing checkpoint at --output.")


def convert(direction, input_path, output, config=None, overwrite=False):
    """Runs one conversion and returns the checkpoint prefix written."""
    import tensorflow as tf

    from convbert_tf import checkpoints

    if direction == "to_tf2":
        if config is None:
            raise app.UsageError("--config is required for --direction=to_tf2 (a preset name or JSON path)")
        if os.path.isdir(output) and tf.train.latest_checkpoint(output) and not overwrite:
            raise FileExistsError(f"{output} already holds a checkpoint; pass --overwrite or another --output")
        prefix = checkpoints.resolve_checkpoint_prefix(input_path)
        reader = tf.train.load_checkpoint(prefix)
        step = int(reader.get_tensor("global_step")) if reader.has_tensor("global_step") else 0
        encoder = checkpoints.load_original_checkpoint(prefix, config)
        return checkpoints.save_encoder(encoder, output, step=step)
    encoder = checkpoints.load_encoder(input_path, config)
    return checkpoints.save_original_checkpoint(encoder, output, overwrite=overwrite)


def main(argv):
    del argv
    from convbert_tf.cli.errors import exit_on_error

    for name in ("input", "output"):
        if not getattr(FLAGS, name):
            raise app.UsageError(f"--{name} is required")
    with exit_on_error("convbert_tf.convert", f"converting a checkpoint {FLAGS.direction}", f"--input {FLAGS.input}"):
        written = convert(FLAGS.direction, FLAGS.input, FLAGS.output, FLAGS.config, FLAGS.overwrite)
    print(f"wrote {written}")


if __name__ == "__main__":
    app.run(main)
