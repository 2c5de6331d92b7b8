"""Checkpoints: the original release's TF1 layout in and out, and this project's TF2 layout.

  names.py     the one map between this project's layers and the names on disk (the original
               release's TF1 names, this project's TF2 object-checkpoint keys); no TensorFlow
  original.py  load_original_checkpoint, load_original_pretraining_checkpoint, save_original_checkpoint,
               is_original_checkpoint
  native.py    this project's TF2 object checkpoints: save_encoder / load_encoder (config.json beside
               the checkpoint), and the dropout states a training checkpoint lists
  files.py     what both layouts share on disk: CheckpointError, finding a prefix, writing under a
               temporary name (io.temporary_name) then renaming into place, the `checkpoint` state file

The files are TensorFlow checkpoints, read and written with TensorFlow on every Keras backend (the
weights go through NumPy), so TensorFlow must be importable to use them; names.py needs none, and the
other modules load on first use of one of their names.

May import config, encoder, layers, models and io; never the training loops. Any module may import
it; the names below are its public surface.
"""

import importlib as _importlib

from convbert_tf.checkpoints.names import (DISCRIMINATOR_SCOPE, GENERATOR_SCOPE, discriminator_head_variable_map,
                                           generator_head_variable_map, native_variable_map,
                                           original_variable_map, pretraining_variable_map)

_MODULE_OF = {
    **{name: "files" for name in ("CheckpointError", "resolve_checkpoint_prefix", "staged_checkpoint",
                                  "write_checkpoint_state")},
    **{name: "native" for name in ("CONFIG_FILENAME", "load_encoder", "random_state_variables", "save_encoder")},
    **{name: "original" for name in ("is_original_checkpoint", "load_original_checkpoint",
                                     "load_original_pretraining_checkpoint", "save_original_checkpoint")},
}


def __getattr__(name):
    if name in _MODULE_OF:
        value = getattr(_importlib.import_module(f"convbert_tf.checkpoints.{_MODULE_OF[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'convbert_tf.checkpoints' has no attribute {name!r}")


__all__ = ["CONFIG_FILENAME", "CheckpointError", "DISCRIMINATOR_SCOPE", "GENERATOR_SCOPE",
           "discriminator_head_variable_map", "generator_head_variable_map", "is_original_checkpoint",
           "load_encoder", "load_original_checkpoint", "load_original_pretraining_checkpoint",
           "native_variable_map", "original_variable_map", "pretraining_variable_map", "random_state_variables",
           "resolve_checkpoint_prefix", "save_encoder", "save_original_checkpoint", "staged_checkpoint",
           "write_checkpoint_state"]
