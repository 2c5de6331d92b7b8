"""convbert_tf: ConvBERT (span-based dynamic convolution BERT) on Keras 3: the model on the tensorflow,
jax and torch backends, training and checkpoints on TensorFlow.

The model part (config, ops, layers, encoder, flops) imports without TensorFlow under
KERAS_BACKEND=jax or torch. The checkpoint functions and `generator_config` load their modules
(and TensorFlow) on first use.
"""

import importlib as _importlib
import os as _os

from convbert_tf.cpu_defaults import set_cpu_defaults as _set_cpu_defaults

_set_cpu_defaults(_os.environ)  # before TensorFlow is first imported (oneDNN on x86 CPUs)
if _os.environ.get("KERAS_BACKEND", "tensorflow") == "tensorflow":
    from convbert_tf.cli.quiet import import_tensorflow_quietly as _import_tensorflow_quietly

    _import_tensorflow_quietly()  # TensorFlow's C++ start-up lines off stderr (CONVBERT_TF_VERBOSE=1 shows them)

from convbert_tf.config import ConfigError, ConvBertConfig
from convbert_tf.encoder import ConvBertEncoder

# Public names whose modules import TensorFlow (or TensorFlow checkpoint files): loaded when first asked for.
_LAZY = {name: "convbert_tf.checkpoints" for name in (
    "CheckpointError", "load_encoder", "load_original_checkpoint", "load_original_pretraining_checkpoint",
    "save_encoder", "save_original_checkpoint")}
_LAZY["generator_config"] = "convbert_tf.models.electra"


def __getattr__(name):
    if name in _LAZY:
        value = getattr(_importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'convbert_tf' has no attribute {name!r}")


__all__ = ["CheckpointError", "ConfigError", "ConvBertConfig", "ConvBertEncoder", "generator_config", "load_encoder",
           "load_original_checkpoint", "load_original_pretraining_checkpoint", "save_encoder",
           "save_original_checkpoint"]
