"""Checkpoints: the original release's TF1 layout in and out, and this project's TF2 layout.

The original release's variable names (`electra/encoder/layer_3/attention/self/conv_attn_key/
depthwise_kernel`, `.../intermediate/g_dense/kernel`, ...) are mapped to this project's layers in
one place, `original_variable_map`; nothing else in the package knows them.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import uuid

import numpy as np
import tensorflow as tf

from convbert_tf.config import ConvBertConfig, generator_config, load_config
from convbert_tf.encoder import ConvBertEncoder
from convbert_tf.layers.masked_lm_head import MaskedLMHead
from convbert_tf.layers.replaced_token_detection_head import ReplacedTokenDetectionHead

CONFIG_FILENAME = "config.json"
DISCRIMINATOR_SCOPE = "electra"
GENERATOR_SCOPE = "generator"


class CheckpointError(ValueError):
    """A checkpoint that cannot be read into the model; the message names the file and variables."""


def random_state_variables(model) -> list:
    """The dropout random states of a Keras 3 model: not tf.train.Checkpoint dependencies of its
    layers, so a training checkpoint lists them explicitly for a resumed run to continue the same
    random stream."""
    return [v for v in model.variables if "seed_generator_state" in v.path]


# ----- the name map ----------------------------------------------------------------------------


def _dense(scope, layer):
    return {f"{scope}/kernel": layer.kernel, f"{scope}/bias": layer.bias}


def _layer_norm(scope, layer):
    return {f"{scope}/beta": layer.beta, f"{scope}/gamma": layer.gamma}


def original_variable_map(encoder: ConvBertEncoder, scope: str = DISCRIMINATOR_SCOPE,
                          include_embeddings: bool = True) -> dict:
    """{original TF1 variable name: Keras variable} for an encoder.

    Args:
      encoder: a built ConvBertEncoder.
      scope: 'electra' for the discriminator, 'generator' for the ELECTRA generator.
      include_embeddings: whether to include the embedding tables, which always live under
        `electra/embeddings` (the generator shares the discriminator's).
    """
    names = {}
    if include_embeddings:
        emb = encoder.embeddings
        names.update({
            "electra/embeddings/word_embeddings": emb.word_embeddings,
            "electra/embeddings/token_type_embeddings": emb.token_type_embeddings,
            "electra/embeddings/position_embeddings": emb.position_embeddings,
        })
        names.update(_layer_norm("electra/embeddings/LayerNorm", emb.layer_norm))
    if encoder.embeddings_project is not None:
        names.update(_dense(f"{scope}/embeddings_project", encoder.embeddings_project))
    for i, block in enumerate(encoder.blocks):
        prefix = f"{scope}/encoder/layer_{i}"
        attention = block.attention
        for part, layer in (("query", attention.query_dense), ("key", attention.key_dense),
                            ("value", attention.value_dense)):
            names.update(_dense(f"{prefix}/attention/self/{part}", layer))
        if attention.span_conv is not None:
            conv = attention.span_conv
            names.update({
                f"{prefix}/attention/self/conv_attn_key/depthwise_kernel": conv.key_conv.depthwise_kernel,
                f"{prefix}/attention/self/conv_attn_key/pointwise_kernel": conv.key_conv.pointwise_kernel,
                f"{prefix}/attention/self/conv_attn_key/bias": conv.key_conv.bias,
            })
            names.update(_dense(f"{prefix}/attention/self/conv_attn_kernel", conv.kernel_dense))
            names.update(_dense(f"{prefix}/attention/self/conv_attn_point", conv.value_dense))
        names.update(_dense(f"{prefix}/attention/output/dense", attention.output_dense))
        names.update(_layer_norm(f"{prefix}/attention/output/LayerNorm", block.attention_layer_norm))
        ffn = "dense" if block.linear_groups == 1 else "g_dense"
        names.update(_dense(f"{prefix}/intermediate/{ffn}", block.intermediate))
        names.update(_dense(f"{prefix}/output/{ffn}", block.output_dense))
        names.update(_layer_norm(f"{prefix}/output/LayerNorm", block.output_layer_norm))
    return names


def generator_head_variable_map(head: MaskedLMHead) -> dict:
    """{original name: variable} for the generator's MLM head (`generator_predictions`)."""
    names = _dense("generator_predictions/dense", head.dense)
    names.update(_layer_norm("generator_predictions/LayerNorm", head.layer_norm))
    names["generator_predictions/output_bias"] = head.output_bias
    return names


def discriminator_head_variable_map(head: ReplacedTokenDetectionHead) -> dict:
    """{original name: variable} for the discriminator's head (`discriminator_predictions`)."""
    names = _dense("discriminator_predictions/dense", head.dense)
    names.update(_dense("discriminator_predictions/dense_1", head.dense_1))
    return names


# ----- reading --------------------------------------------------------------------------------

def resolve_checkpoint_prefix(checkpoint_path: str) -> str:
    """A checkpoint prefix from a prefix or a directory holding a `checkpoint` state file.

    Never falls back to anything: a path that names no checkpoint is an error (the original
    silently fine-tuned from random weights in that case).
    """
    path = os.fspath(checkpoint_path)
    if os.path.isdir(path):
        prefix = tf.train.latest_checkpoint(path)
        if prefix is None:
            indexes = sorted(f for f in os.listdir(path) if f.endswith(".index"))
            hint = (f"; it holds {indexes[:3]}: pass one of those prefixes (without '.index')"
                    if indexes else "")
            raise CheckpointError(f"directory {path} has no 'checkpoint' state file naming a checkpoint{hint}")
        if not os.path.exists(prefix + ".index"):
            raise CheckpointError(f"{path}/checkpoint names {prefix}, but {prefix}.index does not exist")
        return prefix
    if path.endswith(".index"):
        path = path[: -len(".index")]
    if not os.path.exists(path + ".index"):
        raise CheckpointError(f"no checkpoint at {checkpoint_path}: expected {path}.index, or a directory "
                              "with a 'checkpoint' file")
    return path


def _open_reader(prefix: str):
    try:
        return tf.train.load_checkpoint(prefix)
    except (tf.errors.OpError, ValueError) as e:
        raise CheckpointError(f"cannot read checkpoint {prefix}: {e}") from None


def _assign(reader, variable_map: dict, source: str) -> None:
    """Assigns every mapped variable from the reader; lists all missing or mis-shaped names."""
    available = reader.get_variable_to_shape_map()
    if "_CHECKPOINTABLE_OBJECT_GRAPH" in available and not any(n.startswith("electra/") for n in available):
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


@dataclasses.dataclass
class PretrainingModels:
    """The networks of an ELECTRA pretraining checkpoint (generator parts None when absent)."""

    discriminator: ConvBertEncoder
    generator: ConvBertEncoder | None
    generator_head: MaskedLMHead | None
    discriminator_head: ReplacedTokenDetectionHead | None
    global_step: int


def _generator_shape(available: dict, config: ConvBertConfig):
    """(hidden size, layer count) of the generator in a checkpoint, or None if it has none."""
    layers = {int(m.group(1)) for n in available
              if (m := re.match(rf"{GENERATOR_SCOPE}/encoder/layer_(\d+)/", n))}
    if not layers:
        return None
    hidden = available[f"{GENERATOR_SCOPE}/encoder/layer_0/attention/output/LayerNorm/gamma"][0]
    return int(hidden), max(layers) + 1


def build_generator(discriminator: ConvBertEncoder, hidden_fraction: float, layers_fraction: float = 1.0):
    """A generator encoder and MLM head sharing the discriminator's embedding tables."""
    config = generator_config(discriminator.config, hidden_fraction, layers_fraction)
    generator = ConvBertEncoder(config, embedding_layer=discriminator.embeddings, name=GENERATOR_SCOPE,
                                dtype=discriminator.dtype_policy)
    head = MaskedLMHead(discriminator.embeddings, activation=config.hidden_act,
                        initializer_range=config.initializer_range, dtype=discriminator.dtype_policy,
                        name="generator_predictions")
    head.build((None, None, config.hidden_size))
    return generator, head


def build_discriminator_head(discriminator: ConvBertEncoder) -> ReplacedTokenDetectionHead:
    """The replaced-token-detection head for a discriminator."""
    config = discriminator.config
    head = ReplacedTokenDetectionHead(config.hidden_size, activation=config.hidden_act,
                                      initializer_range=config.initializer_range,
                                      dtype=discriminator.dtype_policy, name="discriminator_predictions")
    head.build((None, None, config.hidden_size))
    return head


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
    variable_map = original_variable_map(discriminator)
    discriminator_head = None
    if any(n.startswith("discriminator_predictions/") for n in available):
        discriminator_head = build_discriminator_head(discriminator)
        variable_map.update(discriminator_head_variable_map(discriminator_head))
    generator = generator_head = None
    shape = _generator_shape(available, config)
    if shape is not None:
        hidden, layers = shape
        generator, generator_head = build_generator(
            discriminator, hidden / config.hidden_size, layers / config.num_hidden_layers)
        variable_map.update(original_variable_map(generator, GENERATOR_SCOPE, include_embeddings=False))
        if any(n.startswith("generator_predictions/") for n in available):
            variable_map.update(generator_head_variable_map(generator_head))
        else:
            generator_head = None
    _assign(reader, variable_map, prefix)
    step = int(reader.get_tensor("global_step")) if "global_step" in available else 0
    return PretrainingModels(discriminator, generator, generator_head, discriminator_head, step)


# ----- writing ---------------------------------------------------------------------------------

def _move_checkpoint_files(tmp_prefix: str, final_prefix: str) -> None:
    """Renames a written checkpoint into place: data shards first, the index last.

    A reader needs the `.index`, so until the last rename the new checkpoint is invisible, and
    an interrupted move never leaves an index pointing at missing data.
    """
    tmp_dir, tmp_base = os.path.split(tmp_prefix)
    final_base = os.path.basename(final_prefix)
    if os.path.exists(final_prefix + ".index"):
        os.remove(final_prefix + ".index")
    files = sorted(f for f in os.listdir(tmp_dir) if f.startswith(tmp_base + "."))
    for f in sorted(files, key=lambda f: f.endswith(".index")):
        os.replace(os.path.join(tmp_dir, f),
                   os.path.join(os.path.dirname(final_prefix), final_base + f[len(tmp_base):]))


def write_checkpoint_state(directory: str, prefix: str) -> None:
    """Points the directory's `checkpoint` state file at `prefix` (atomically, relative path)."""
    base = os.path.relpath(prefix, directory)
    tmp = os.path.join(directory, f".checkpoint.tmp-{uuid.uuid4().hex[:8]}")
    with open(tmp, "w") as f:
        f.write(f'model_checkpoint_path: "{base}"\nall_model_checkpoint_paths: "{base}"\n')
    os.replace(tmp, os.path.join(directory, "checkpoint"))


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
    directory = os.path.dirname(prefix)
    if os.path.exists(prefix + ".index") and not overwrite:
        raise FileExistsError(f"checkpoint {prefix} exists; pass overwrite=True to replace it")
    values = {name: v.numpy() for name, v in original_variable_map(encoder).items()}
    if generator is not None:
        values.update({n: v.numpy() for n, v in
                       original_variable_map(generator, GENERATOR_SCOPE, include_embeddings=False).items()})
    if generator_head is not None:
        values.update({n: v.numpy() for n, v in generator_head_variable_map(generator_head).items()})
    if discriminator_head is not None:
        values.update({n: v.numpy() for n, v in discriminator_head_variable_map(discriminator_head).items()})
    values["global_step"] = np.array(global_step, np.int64)

    os.makedirs(directory, exist_ok=True)
    tmp_dir = os.path.join(directory, f".tmp-{uuid.uuid4().hex[:8]}")
    os.makedirs(tmp_dir)
    try:
        tmp_prefix = os.path.join(tmp_dir, os.path.basename(prefix))
        names = sorted(values)
        tf.raw_ops.SaveV2(prefix=tmp_prefix, tensor_names=names, shape_and_slices=[""] * len(names),
                          tensors=[tf.constant(values[n]) for n in names])
        _move_checkpoint_files(tmp_prefix, prefix)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)
    write_checkpoint_state(directory, prefix)
    return prefix


# ----- this project's TF2 layout ---------------------------------------------------------------

def save_encoder(encoder: ConvBertEncoder, directory: str, step: int = 0) -> str:
    """Writes `ckpt-<step>` (a TF2 object checkpoint with the encoder under `encoder`) and config.json.

    Written in a temporary directory and renamed into place; returns the checkpoint prefix.
    """
    directory = os.path.abspath(directory)
    os.makedirs(directory, exist_ok=True)
    tmp_dir = os.path.join(directory, f".tmp-{uuid.uuid4().hex[:8]}")
    try:
        tmp_prefix = tf.train.Checkpoint(encoder=encoder).write(os.path.join(tmp_dir, f"ckpt-{step}"))
        encoder.config.to_json_file(os.path.join(tmp_dir, CONFIG_FILENAME))
        final_prefix = os.path.join(directory, f"ckpt-{step}")
        _move_checkpoint_files(tmp_prefix, final_prefix)
        os.replace(os.path.join(tmp_dir, CONFIG_FILENAME), os.path.join(directory, CONFIG_FILENAME))
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)
    write_checkpoint_state(directory, final_prefix)
    return final_prefix


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
    saved_config_path = os.path.join(os.path.dirname(prefix), CONFIG_FILENAME)
    if os.path.exists(saved_config_path):
        saved = load_config(saved_config_path)
        differ = {k: (v, getattr(config, k)) for k, v in saved.to_dict().items()
                  if getattr(config, k) != v and not k.endswith("dropout_prob") and k not in ("conv_mask_padding", "conv_implementation")}
        if differ:
            raise CheckpointError(
                f"checkpoint {prefix} was written for another config ({saved_config_path}); "
                + ", ".join(f"{k}: checkpoint {a!r} vs given {b!r}" for k, (a, b) in sorted(differ.items())))
    encoder = ConvBertEncoder(config)
    available = dict(tf.train.list_variables(prefix))
    if not any(n.startswith("encoder/") for n in available):
        raise CheckpointError(
            f"checkpoint {prefix} has no 'encoder' object; if it is an original-release (TF1) "
            "checkpoint, use load_original_checkpoint or `python -m convbert_tf.convert`")
    try:
        status = tf.train.Checkpoint(encoder=encoder).read(prefix)
        status.expect_partial().assert_existing_objects_matched()
    except (AssertionError, ValueError) as e:
        raise CheckpointError(f"checkpoint {prefix} does not match the encoder config: {e}") from None
    return encoder
