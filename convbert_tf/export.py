r"""SavedModel export of a ConvBertEncoder, with the BERT tokenizer and input packing in the graph.

Legend: B batch, T length of given ids, S max_seq_length (serve_text's padded length), D hidden.

  python -m convbert_tf.export --checkpoint=runs/small --vocab_file=vocab.txt \
      --export_dir=exported/small [--max_seq_length=128] [--nodo_lower_case] [--nostrip_accents] \
      [--overwrite] [--original_layout_prefix=exported/original/model.ckpt]

The SavedModel has two signatures:

  serving_default  input_ids, input_mask, segment_ids  int32 [B, T]
                   -> sequence_output float32 [B, T, D], pooled_output float32 [B, D]
  serve_text       text  tf.string [B]
                   -> sequence_output float32 [B, S, D], pooled_output float32 [B, D],
                      input_ids, input_mask int32 [B, S]   (S = max_seq_length, `[CLS] text [SEP]`)

Loading it needs `import tensorflow_text` (for NormalizeUTF8, RegexSplitWithOffsets and
WordpieceTokenizeWithOffsets, which stock TF Serving ships) and nothing from this package. The
vocab file is copied into the SavedModel's assets/ (the tokenizer's table is also baked into
the graph, so the assets copy is for readers, not needed to serve). Outputs are float32 even
for a mixed-precision encoder. Dropout is off (training=False).
"""

import os
import shutil
import sys

import tensorflow as tf
from absl import app, flags

from convbert_tf import checkpoints, io, ops, text_inputs
from convbert_tf.checkpoints import CheckpointError
from convbert_tf.config import ConfigError
from convbert_tf.data.tokenization import VocabError, WordPieceTokenizerModule, read_vocab

SERVE_TEXT_SIGNATURE = "serve_text"


class ExportError(ValueError):
    """Export arguments that cannot work: a vocab larger than the model's, max_seq_length out of range."""


def _build_serving_module(encoder, tokens, vocab_file, do_lower_case, strip_accents, max_seq_length):
    """A tf.Module holding the encoder's variables, the tokenizer, the vocab asset and both endpoints.

    The Keras model itself is not an attribute of the module: tf.saved_model.save would walk
    its Keras 3 internals. As keras.export.ExportArchive does, the module tracks only the
    variables (a list), and the endpoints reach the model through a closure.
    """
    def encode(inputs):
        outputs = encoder(inputs, training=False)
        return {"sequence_output": tf.cast(outputs["sequence_output"], tf.float32),  # [B, T, D]
                "pooled_output": tf.cast(outputs["pooled_output"], tf.float32)}  # [B, D]

    module = tf.Module(name="convbert_encoder_export")
    module.encoder_variables = list(encoder.variables)
    module.tokenizer = WordPieceTokenizerModule(tokens, do_lower_case, strip_accents)
    module.vocab_file = tf.saved_model.Asset(vocab_file)
    module.do_lower_case = tf.Variable(bool(do_lower_case), trainable=False, name="do_lower_case")
    module.strip_accents = tf.Variable(bool(strip_accents), trainable=False, name="strip_accents")
    module.max_seq_length = tf.Variable(int(max_seq_length), trainable=False, name="max_seq_length")

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.int32, name=key)
                                  for key in text_inputs.MODEL_INPUT_KEYS])
    def serve_ids(input_ids, input_mask, segment_ids):
        return encode({"input_ids": input_ids, "input_mask": input_mask, "segment_ids": segment_ids})

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def serve_text(text):
        inputs, _ = text_inputs.pack_text_inputs(module.tokenizer, text, max_seq_length=max_seq_length)
        outputs = encode(inputs)
        outputs["input_ids"] = inputs["input_ids"]  # [B, S]
        outputs["input_mask"] = inputs["input_mask"]  # [B, S]
        return outputs

    module.serve_ids = serve_ids
    module.serve_text = serve_text
    signatures = {
        "serving_default": serve_ids.get_concrete_function(),
        SERVE_TEXT_SIGNATURE: serve_text.get_concrete_function(),
    }
    return module, signatures


def _check_export_dir(export_dir, overwrite):
    if os.path.lexists(export_dir) and not overwrite:
        raise FileExistsError(f"export_dir {export_dir} exists; pass overwrite=True (--overwrite) to "
                              "replace it, or choose another directory")


def export_encoder(encoder, export_dir, *, vocab_file, do_lower_case=True, strip_accents=True,
                   max_seq_length=128, overwrite=False) -> str:
    """Writes a SavedModel of the encoder with `serving_default` (ids) and `serve_text` (raw text).

    The SavedModel is written to a temporary directory beside `export_dir` and renamed into
    place, so `export_dir` is either absent, the previous export, or complete. With
    `overwrite`, the previous export is renamed away, the new one renamed in, then the old
    one deleted; if the export fails, the previous one is left as it was.

    Args:
      encoder: a built ConvBertEncoder (any dtype policy; outputs are cast to float32).
      export_dir: the SavedModel directory to create.
      vocab_file: the WordPiece vocab (validated as `read_vocab` does); copied into assets/.
      do_lower_case, strip_accents: the tokenizer's rules (see `convbert_tf.data.tokenization`).
      max_seq_length: S, the padded length of `serve_text` inputs, at most the config's
        max_position_embeddings.
      overwrite: replace an existing `export_dir`.

    Returns:
      The absolute path of the export.

    Raises:
      FileExistsError: `export_dir` exists and not `overwrite`.
      VocabError: the vocab file is missing or malformed.
      ExportError: the vocab has more tokens than the model's vocab_size, or max_seq_length
        is out of range.
    """
    export_dir = os.path.abspath(os.fspath(export_dir))
    _check_export_dir(export_dir, overwrite)
    tokens = read_vocab(vocab_file)
    config = encoder.config
    if len(tokens) > config.vocab_size:
        raise ExportError(f"vocab file {vocab_file} has {len(tokens)} tokens but the model's vocab_size is "
                          f"{config.vocab_size}; ids past {config.vocab_size - 1} have no embedding. "
                          "Pass the vocab the model was trained with.")
    if not 2 <= max_seq_length <= config.max_position_embeddings:
        raise ExportError(f"max_seq_length must be in [2, max_position_embeddings = "
                          f"{config.max_position_embeddings}], got {max_seq_length}")

    with ops.without_xla():  # TF Serving runs graphs without XLA by default
        module, signatures = _build_serving_module(
            encoder, tokens, os.path.abspath(os.fspath(vocab_file)), do_lower_case, strip_accents,
            max_seq_length)
        return write_saved_model(module, signatures, export_dir, overwrite)


def write_saved_model(module, signatures, export_dir, overwrite=False) -> str:
    """tf.saved_model.save into a temporary directory beside export_dir, then renamed into place.

    `export_dir` is always either absent, the previous export, or complete: with `overwrite`
    the previous export is renamed away, the new one renamed in, then the old one deleted; if
    anything fails, the previous export is left as it was (`io.replace_directory`). The
    temporary names are `io.temporary_name`s.
    """
    export_dir = os.path.abspath(os.fspath(export_dir))
    _check_export_dir(export_dir, overwrite)
    io.makedirs(os.path.dirname(export_dir))
    tmp_dir = io.temporary_name(export_dir)
    try:
        with ops.without_xla():  # functions traced while saving, too
            tf.saved_model.save(module, tmp_dir, signatures=signatures)
        _check_export_dir(export_dir, overwrite)  # another writer may have been quicker
        io.replace_directory(tmp_dir, export_dir)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)
    return export_dir


def export_from_checkpoint(checkpoint, export_dir, *, vocab_file, do_lower_case=True, strip_accents=True,
                           max_seq_length=128, overwrite=False, original_layout_prefix=None):
    """Loads an encoder with `load_encoder` and exports it; optionally also in the original layout.

    Returns:
      (export_dir, original checkpoint prefix or None).
    """
    # Every argument checked before the slow work, so a typo costs no export.
    _check_export_dir(os.path.abspath(export_dir), overwrite)
    read_vocab(vocab_file)
    if original_layout_prefix and os.path.exists(original_layout_prefix + ".index") and not overwrite:
        raise FileExistsError(f"checkpoint {original_layout_prefix} exists; pass --overwrite to replace it")
    encoder = checkpoints.load_encoder(checkpoint)
    written = export_encoder(encoder, export_dir, vocab_file=vocab_file, do_lower_case=do_lower_case,
                             strip_accents=strip_accents, max_seq_length=max_seq_length, overwrite=overwrite)
    original = None
    if original_layout_prefix:
        original = checkpoints.save_original_checkpoint(encoder, original_layout_prefix, overwrite=overwrite)
    return written, original


def define_flags(flag_values=flags.FLAGS):
    """Defines the CLI flags (only when run as a program, so importing this module defines none)."""
    flags.DEFINE_string("checkpoint", None,
                        "This project's TF2 checkpoint: a directory with a `checkpoint` state file and "
                        "config.json (convert output, save_encoder, pretraining runs) or a prefix.",
                        flag_values=flag_values)
    flags.DEFINE_string("vocab_file", None, "The WordPiece vocab the model was trained with.",
                        flag_values=flag_values)
    flags.DEFINE_string("export_dir", None, "Directory to write the SavedModel to.", flag_values=flag_values)
    flags.DEFINE_integer("max_seq_length", 128, "Length S that serve_text pads and truncates to.",
                         flag_values=flag_values)
    flags.DEFINE_bool("do_lower_case", True, "Lower-case text in serve_text (--nodo_lower_case for cased).",
                      flag_values=flag_values)
    flags.DEFINE_bool("strip_accents", True, "With lower-casing, strip accents (--nostrip_accents as the "
                      "original's --no-strip-accents).", flag_values=flag_values)
    flags.DEFINE_bool("overwrite", False, "Replace an existing --export_dir (and --original_layout_prefix).",
                      flag_values=flag_values)
    flags.DEFINE_string("original_layout_prefix", None, "Also write the encoder as a TF1 checkpoint in the "
                        "original release's layout at this prefix.", flag_values=flag_values)


def run(flag_values):
    """The CLI body: exports as the parsed flags say; user errors print one line and exit 1."""
    for name in ("checkpoint", "vocab_file", "export_dir"):
        if not flag_values[name].value:
            raise app.UsageError(f"--{name} is required")
    try:
        written, original = export_from_checkpoint(
            flag_values.checkpoint, flag_values.export_dir, vocab_file=flag_values.vocab_file,
            do_lower_case=flag_values.do_lower_case, strip_accents=flag_values.strip_accents,
            max_seq_length=flag_values.max_seq_length, overwrite=flag_values.overwrite,
            original_layout_prefix=flag_values.original_layout_prefix)
    except (CheckpointError, ConfigError, VocabError, ExportError, FileExistsError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
    print(f"wrote SavedModel {written} (signatures serving_default, {SERVE_TEXT_SIGNATURE})")
    if original:
        print(f"wrote original-layout checkpoint {original}")


def main(argv):
    del argv
    from convbert_tf.cli.errors import exit_on_error

    with exit_on_error("convbert_tf.export", "exporting a SavedModel", f"--checkpoint {flags.FLAGS.checkpoint}"):
        run(flags.FLAGS)


if __name__ == "__main__":
    define_flags()
    app.run(main)
