"""The original release's TF1 checkpoint layout, read and written.

The original release's variable names are mapped to this project's layers in names.py. Files are
read with TensorFlow's checkpoint reader as NumPy arrays and assigned to the Keras variables, and
written from NumPy, so the same files load into the model on every Keras backend (TensorFlow
itself must be importable to read or write them).
"""

from __future__ import annotations

import os
import re

import numpy as np
import tensorflow as tf

import keras

from convbert_tf.checkpoints.files import CheckpointError, resolve_checkpoint_prefix, staged_checkpoint
from convbert_tf.checkpoints.names import (DISCRIMINATOR_SCOPE, GENERATOR_SCOPE, original_variable_map,
                                           pretraining_variable_map)
from convbert_tf.config import load_config
from convbert_tf.encoder import ConvBertEncoder
from convbert_tf.layers.masked_lm_head import MaskedLMHead
from convbert_tf.layers.replaced_token_detection_head import ReplacedTokenDetectionHead
from convbert_tf.models.electra import PretrainingModels, build_discriminator_head, build_generator


def _holds_original_names(names) -> bool:
    return any(n.startswith(f"{DISCRIMINATOR_SCOPE}/") for n in names)


def is_original_checkpoint(prefix: str) -> bool:
    """Whether the checkpoint at `prefix` is in the original release's TF1 layout (its names under
    `electra/`), rather than one of this project's TF2 object checkpoints."""
    return _holds_original_names(name for name, _ in tf.train.list_variables(prefix))


# ----- reading --------------------------------------------------------------------------------

def _open_reader(prefix: str):
    try:
        return tf.train.load_checkpoint(prefix)
    except (tf.errors.OpError, ValueError) as e:
        raise CheckpointError(f"cannot read checkpoint {prefix}: {e}") from None


def _assign(reader, variable_map: dict, source: str) -> None:
    """Assigns every mapped variable from the reader; lists all missing or mis-shaped names."""
    available = reader.get_variable_to_shape_map()
    if "_CHECKPOINTABLE_OBJECT_GRAPH" in available and not _holds_original_names(available):
        raise CheckpointError(f"checkpoint {source} is in this project's TF2 layout, not the original "
                              "release's; load it with convbert_tf.load_encoder")
    missing = sorted(n for n in variable_map if n not in available)
    misshaped = sorted(
        f"{n}: checkpoint {list(available[n])} vs model {list(v.shape)}"
        for n, v in variable_map.items() if n in available and tuple(available[n]) != tuple(v.shape))
    if missing or misshaped:
        lines = []
        if missing:
            lines.append(f"{len(missing)} variable(s) missing: " + ", ".join(missing[:12])
                         + (" ..." if len(missing) > 12 else ""))
        if misshaped:
            lines.append(f"{len(misshaped)} variable(s) of another shape:\n  " + "\n  ".join(misshaped[:12])
                         + ("\n  ..." if len(misshaped) > 12 else ""))
        raise CheckpointError(
            f"checkpoint {source} does not fit the model config:\n" + "\n".join(lines)
            + "\nCheck that the config (model size, embedding_size, linear_groups, conv_type) matches "
              "the checkpoint.")
    for name, variable in variable_map.items():
        variable.assign(reader.get_tensor(name).astype(variable.dtype))


def load_original_checkpoint(checkpoint_path: str, config) -> ConvBertEncoder:
    """Builds a ConvBertEncoder with the discriminator weights of an original-release checkpoint.

    Args:
      checkpoint_path: a TF1 checkpoint prefix (`.../model.ckpt-1000000`) or a directory with
        a `checkpoint` state file. Pretraining checkpoints (generator, heads, `global_step`,
        `adam_m`/`adam_v` slots) are accepted; what the encoder does not use is ignored.
      config: a ConvBertConfig, preset name, or path to JSON in the BertConfig or hparams form.

    Raises:
      CheckpointError: no checkpoint there, or encoder weights missing or of another shape
        (all of them are listed).
    """
    config = load_config(config)
    prefix = resolve_checkpoint_prefix(checkpoint_path)
    reader = _open_reader(prefix)
    encoder = ConvBertEncoder(config)
    _assign(reader, original_variable_map(encoder), prefix)
    return encoder


def _generator_shape(available: dict):
    """(hidden size, layer count) of the generator in a checkpoint, or None if it has none."""
    layers = {int(m.group(1)) for n in available
              if (m := re.match(rf"{GENERATOR_SCOPE}/encoder/layer_(\d+)/", n))}
    if not layers:
        return None
    hidden = available[f"{GENERATOR_SCOPE}/encoder/layer_0/attention/output/LayerNorm/gamma"][0]
    return int(hidden), max(layers) + 1


def load_original_pretraining_checkpoint(checkpoint_path: str, config) -> PretrainingModels:
    """Loads the discriminator, and the generator and both heads when present, for continued pretraining.

    The generator's size is read from the checkpoint (its hidden width over the discriminator's
    is the original `generator_hidden_size` fraction), then built as the original builds it.
    """
    config = load_config(config)
    prefix = resolve_checkpoint_prefix(checkpoint_path)
    reader = _open_reader(prefix)
    available = reader.get_variable_to_shape_map()
    discriminator = ConvBertEncoder(config)
    discriminator_head = None
    if any(n.startswith("discriminator_predictions/") for n in available):
        discriminator_head = build_discriminator_head(discriminator)
    generator = generator_head = None
    shape = _generator_shape(available)
    if shape is not None:
        hidden, layers = shape
        generator, generator_head = build_generator(
            discriminator, hidden / config.hidden_size, layers / config.num_hidden_layers)
        if not any(n.startswith("generator_predictions/") for n in available):
            generator_head = None
    _assign(reader, pretraining_variable_map(discriminator, generator, generator_head, discriminator_head), prefix)
    step = int(reader.get_tensor("global_step")) if "global_step" in available else 0
    return PretrainingModels(discriminator, generator, generator_head, discriminator_head, step)


# ----- writing ---------------------------------------------------------------------------------

def save_original_checkpoint(encoder: ConvBertEncoder, checkpoint_prefix: str, *, global_step: int = 0,
                             generator: ConvBertEncoder | None = None,
                             generator_head: MaskedLMHead | None = None,
                             discriminator_head: ReplacedTokenDetectionHead | None = None,
                             overwrite: bool = False) -> str:
    """Writes a TF1 name-based checkpoint with exactly the original release's names and shapes.

    Anything that reads the original checkpoints (its fine-tuning code, converters) reads it.
    The files are written under a temporary name and renamed into place, then the directory's
    `checkpoint` state file is pointed at them.

    Returns:
      The checkpoint prefix written.
    """
    prefix = os.path.abspath(os.fspath(checkpoint_prefix))
    if os.path.exists(prefix + ".index") and not overwrite:
        raise FileExistsError(f"checkpoint {prefix} exists; pass overwrite=True to replace it")
    variable_map = pretraining_variable_map(encoder, generator, generator_head, discriminator_head)
    values = {name: keras.ops.convert_to_numpy(v) for name, v in variable_map.items()}
    values["global_step"] = np.array(global_step, np.int64)
    names = sorted(values)
    with staged_checkpoint(prefix) as tmp_prefix:
        tf.raw_ops.SaveV2(prefix=tmp_prefix, tensor_names=names, shape_and_slices=[""] * len(names),
                          tensors=[tf.constant(values[n]) for n in names])
    return prefix
