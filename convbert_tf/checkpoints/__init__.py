"""Checkpoints: the original release's TF1 layout in and out, and this project's TF2 layout.

  original.py  the one map between the original release's variable names and this project's layers;
               load_original_checkpoint, load_original_pretraining_checkpoint, save_original_checkpoint,
               is_original_checkpoint
  native.py    this project's TF2 object checkpoints: save_encoder / load_encoder (config.json beside
               the checkpoint), and the dropout states a training checkpoint lists
  files.py     what both layouts share on disk: CheckpointError, finding a prefix, writing under a
               temporary name (io.temporary_name) then renaming into place, the `checkpoint` state file

May import config, encoder, layers, models and io; never the training loops. Any module may import
it; the names below are its public surface.
"""

from convbert_tf.checkpoints.files import (CheckpointError, resolve_checkpoint_prefix, staged_checkpoint,
                                           write_checkpoint_state)
from convbert_tf.checkpoints.native import CONFIG_FILENAME, load_encoder, random_state_variables, save_encoder
from convbert_tf.checkpoints.original import (DISCRIMINATOR_SCOPE, GENERATOR_SCOPE, discriminator_head_variable_map,
                                              generator_head_variable_map, is_original_checkpoint,
                                              load_original_checkpoint, load_original_pretraining_checkpoint,
                                              original_variable_map, pretraining_variable_map,
                                              save_original_checkpoint)

__all__ = ["CONFIG_FILENAME", "CheckpointError", "DISCRIMINATOR_SCOPE", "GENERATOR_SCOPE",
           "discriminator_head_variable_map", "generator_head_variable_map", "is_original_checkpoint",
           "load_encoder", "load_original_checkpoint", "load_original_pretraining_checkpoint",
           "original_variable_map", "pretraining_variable_map", "random_state_variables",
           "resolve_checkpoint_prefix", "save_encoder", "save_original_checkpoint", "staged_checkpoint",
           "write_checkpoint_state"]
