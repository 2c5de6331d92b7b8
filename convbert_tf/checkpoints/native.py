"""This project's TF2 layout: an object checkpoint with the encoder under `encoder`, and the
encoder's config.json beside it.

On tensorflow the encoder itself is the checkpointed object. On jax and torch the same file is
written from a tree of tf.Modules holding the weights as NumPy (the keys of
`names.native_variable_map`) and read back through TensorFlow's checkpoint reader, so one file
serves every backend.
"""

from __future__ import annotations

import os

import keras
import tensorflow as tf

from convbert_tf.checkpoints.files import CheckpointError, resolve_checkpoint_prefix, staged_checkpoint
from convbert_tf.checkpoints.names import native_variable_map
from convbert_tf.config import load_config
from convbert_tf.encoder import ConvBertEncoder

CONFIG_FILENAME = "config.json"
# Config fields that may differ between a checkpoint and the config it is loaded with: they change
# no weight (dropout rates, how the convolution is computed).
_FREE_FIELDS = ("conv_mask_padding", "conv_implementation")


def random_state_variables(model) -> list:
    """The dropout random states of a Keras 3 model: not tf.train.Checkpoint dependencies of its
    layers, so a training checkpoint lists them explicitly for a resumed run to continue the same
    random stream."""
    return [v for v in model.variables if "seed_generator_state" in v.path]


def save_encoder(encoder: ConvBertEncoder, directory: str, step: int = 0) -> str:
    """Writes `ckpt-<step>` (a TF2 object checkpoint with the encoder under `encoder`) and config.json.

    Written in a temporary directory and renamed into place; returns the checkpoint prefix.
    """
    final_prefix = os.path.join(os.path.abspath(directory), f"ckpt-{step}")
    with staged_checkpoint(final_prefix, companions=(CONFIG_FILENAME,)) as tmp_prefix:
        tf.train.Checkpoint(encoder=_checkpointable(encoder)).write(tmp_prefix)
        encoder.config.to_json_file(os.path.join(os.path.dirname(tmp_prefix), CONFIG_FILENAME))
    return final_prefix


def _check_saved_config(prefix: str, config) -> None:
    """Refuses a config that differs from the config.json beside the checkpoint in a weight-shaping field."""
    saved_config_path = os.path.join(os.path.dirname(prefix), CONFIG_FILENAME)
    if not os.path.exists(saved_config_path):
        return
    saved = load_config(saved_config_path)
    differ = {k: (v, getattr(config, k)) for k, v in saved.to_dict().items()
              if getattr(config, k) != v and not k.endswith("dropout_prob") and k not in _FREE_FIELDS}
    if differ:
        raise CheckpointError(
            f"checkpoint {prefix} was written for another config ({saved_config_path}); "
            + ", ".join(f"{k}: checkpoint {a!r} vs given {b!r}" for k, (a, b) in sorted(differ.items())))


def load_encoder(checkpoint_path: str, config=None) -> ConvBertEncoder:
    """Loads an encoder from this project's TF2 checkpoint (`save_encoder`, pretraining runs).

    Args:
      checkpoint_path: a directory with a `checkpoint` state file, or a checkpoint prefix.
      config: the encoder config; by default the `config.json` beside the checkpoint.
    """
    prefix = resolve_checkpoint_prefix(checkpoint_path)
    if config is None:
        config_path = os.path.join(os.path.dirname(prefix), CONFIG_FILENAME)
        if not os.path.exists(config_path):
            raise CheckpointError(f"no {CONFIG_FILENAME} beside checkpoint {prefix}; pass config=")
        config = config_path
    config = load_config(config)
    _check_saved_config(prefix, config)
    encoder = ConvBertEncoder(config)
    available = dict(tf.train.list_variables(prefix))
    if not any(n.startswith("encoder/") for n in available):
        raise CheckpointError(
            f"checkpoint {prefix} has no 'encoder' object; if it is an original-release (TF1) "
            "checkpoint, use load_original_checkpoint or `python -m convbert_tf.convert`")
    if keras.backend.backend() != "tensorflow":
        _read_as_numpy(encoder, prefix, available)
        return encoder
    try:
        status = tf.train.Checkpoint(encoder=encoder).read(prefix)
        status.expect_partial().assert_existing_objects_matched()
    except (AssertionError, ValueError) as e:
        raise CheckpointError(f"checkpoint {prefix} does not match the encoder config: {e}") from None
    return encoder


def _checkpointable(encoder):
    """The encoder on tensorflow; elsewhere a tree of tf.Modules whose attribute paths and
    tf.Variables (NumPy copies of the weights) give the same checkpoint keys."""
    if keras.backend.backend() == "tensorflow":
        return encoder
    root = tf.Module()
    for key, variable in native_variable_map(encoder).items():
        *scopes, leaf = key.split("/")[1:-2]  # without "encoder/" and "/.ATTRIBUTES/VARIABLE_VALUE"
        node = root
        for scope in scopes:
            if not hasattr(node, scope):
                setattr(node, scope, tf.Module())
            node = getattr(node, scope)
        setattr(node, leaf, tf.Variable(keras.ops.convert_to_numpy(variable)))
    return root


def _read_as_numpy(encoder, prefix, available):
    """Assigns every encoder weight from the checkpoint's NumPy values (jax and torch backends)."""
    variables = native_variable_map(encoder)
    wrong = sorted(f"{key}: {list(available.get(key, []))} vs {list(v.shape)}" for key, v in variables.items()
                   if tuple(available.get(key, ())) != tuple(v.shape))
    if wrong:
        raise CheckpointError(f"checkpoint {prefix} does not match the encoder config: "
                              + "; ".join(wrong[:12]) + (" ..." if len(wrong) > 12 else ""))
    reader = tf.train.load_checkpoint(prefix)
    for key, variable in variables.items():
        variable.assign(reader.get_tensor(key).astype(variable.dtype))
