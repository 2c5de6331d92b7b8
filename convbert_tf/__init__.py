"""convbert_tf: ConvBERT (span-based dynamic convolution BERT) on TensorFlow 2 and Keras 3."""

import os as _os

from convbert_tf.cli.quiet import import_tensorflow_quietly as _import_tensorflow_quietly
from convbert_tf.cpu_defaults import set_cpu_defaults as _set_cpu_defaults

_set_cpu_defaults(_os.environ)  # before TensorFlow is first imported (oneDNN on x86 CPUs)
_import_tensorflow_quietly()  # TensorFlow's C++ start-up lines off stderr (CONVBERT_TF_VERBOSE=1 shows them)

from convbert_tf.config import ConfigError, ConvBertConfig
from convbert_tf.encoder import ConvBertEncoder
from convbert_tf.checkpoints import (CheckpointError, load_encoder, load_original_checkpoint,
                                     load_original_pretraining_checkpoint, save_encoder,
                                     save_original_checkpoint)
from convbert_tf.models.electra import generator_config

__all__ = ["CheckpointError", "ConfigError", "ConvBertConfig", "ConvBertEncoder", "generator_config", "load_encoder",
           "load_original_checkpoint", "load_original_pretraining_checkpoint", "save_encoder",
           "save_original_checkpoint"]
