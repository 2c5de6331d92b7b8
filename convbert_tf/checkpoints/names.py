"""The one map between this project's layers and the names their variables have on disk, with no
TensorFlow: the original release's TF1 names (`electra/encoder/layer_3/attention/self/conv_attn_key/
depthwise_kernel`, `.../intermediate/g_dense/kernel`, ...) and this project's TF2 object-checkpoint
keys (`encoder/layer_3/attention/span_conv/key_conv/depthwise_kernel/.ATTRIBUTES/VARIABLE_VALUE`,
the attribute path from the encoder). Nothing else in the package knows either set of names.
"""

from __future__ import annotations

DISCRIMINATOR_SCOPE = "electra"
GENERATOR_SCOPE = "generator"
# The attribute path of a variable in a TF2 object checkpoint ends with this.
_VALUE = ".ATTRIBUTES/VARIABLE_VALUE"


def _dense(original, native, layer):
    """(original, native, variable) of a Keras Dense layer (its kernel attribute is `_kernel`)."""
    return [(f"{original}/kernel", f"{native}/_kernel", layer.kernel), (f"{original}/bias", f"{native}/bias", layer.bias)]


def _grouped(original, native, layer):
    """(original, native, variable) of a GroupedDense layer."""
    return [(f"{original}/kernel", f"{native}/kernel", layer.kernel), (f"{original}/bias", f"{native}/bias", layer.bias)]


def _layer_norm(original, native, layer):
    return [(f"{original}/beta", f"{native}/beta", layer.beta), (f"{original}/gamma", f"{native}/gamma", layer.gamma)]


def _block_entries(block, original, native):
    """(original, native, variable) of one ConvBertBlock."""
    attention, self_scope = block.attention, f"{original}/attention/self"
    entries = []
    for part, layer in (("query", attention.query_dense), ("key", attention.key_dense),
                        ("value", attention.value_dense)):
        entries += _dense(f"{self_scope}/{part}", f"{native}/attention/{part}_dense", layer)
    if attention.span_conv is not None:
        conv, key = attention.span_conv, f"{native}/attention/span_conv/key_conv"
        entries += [(f"{self_scope}/conv_attn_key/{name}", f"{key}/{name}", getattr(conv.key_conv, name))
                    for name in ("depthwise_kernel", "pointwise_kernel", "bias")]
        entries += _dense(f"{self_scope}/conv_attn_kernel", f"{native}/attention/span_conv/kernel_dense",
                          conv.kernel_dense)
        entries += _dense(f"{self_scope}/conv_attn_point", f"{native}/attention/span_conv/value_dense",
                          conv.value_dense)
    entries += _dense(f"{original}/attention/output/dense", f"{native}/attention/output_dense",
                      attention.output_dense)
    entries += _layer_norm(f"{original}/attention/output/LayerNorm", f"{native}/attention_layer_norm",
                           block.attention_layer_norm)
    ffn = "dense" if block.linear_groups == 1 else "g_dense"
    entries += _grouped(f"{original}/intermediate/{ffn}", f"{native}/intermediate", block.intermediate)
    entries += _grouped(f"{original}/output/{ffn}", f"{native}/output_dense", block.output_dense)
    entries += _layer_norm(f"{original}/output/LayerNorm", f"{native}/output_layer_norm", block.output_layer_norm)
    return entries


def _encoder_entries(encoder, scope, include_embeddings, root="encoder"):
    """(original name, native key without its suffix, variable) of every encoder variable."""
    entries = []
    if include_embeddings:
        emb = encoder.embeddings
        entries += [(f"electra/embeddings/{name}", f"{root}/embeddings/{name}", getattr(emb, name))
                    for name in ("word_embeddings", "token_type_embeddings", "position_embeddings")]
        entries += _layer_norm("electra/embeddings/LayerNorm", f"{root}/embeddings/layer_norm", emb.layer_norm)
    if encoder.embeddings_project is not None:
        entries += _dense(f"{scope}/embeddings_project", f"{root}/embeddings_project", encoder.embeddings_project)
    for i, block in enumerate(encoder.blocks):
        entries += _block_entries(block, f"{scope}/encoder/layer_{i}", f"{root}/layer_{i}")
    return entries


def original_variable_map(encoder, scope: str = DISCRIMINATOR_SCOPE, include_embeddings: bool = True) -> dict:
    """{original TF1 variable name: Keras variable} for an encoder.

    Args:
      encoder: a built ConvBertEncoder.
      scope: 'electra' for the discriminator, 'generator' for the ELECTRA generator.
      include_embeddings: whether to include the embedding tables, which always live under
        `electra/embeddings` (the generator shares the discriminator's).
    """
    return {original: variable for original, _, variable in _encoder_entries(encoder, scope, include_embeddings)}


def native_variable_map(encoder, root: str = "encoder") -> dict:
    """{key in this project's TF2 object checkpoint: Keras variable} for an encoder saved as
    `tf.train.Checkpoint(<root>=encoder)` (`save_encoder`): the same keys on every backend."""
    return {f"{native}/{_VALUE}": variable
            for _, native, variable in _encoder_entries(encoder, DISCRIMINATOR_SCOPE, True, root)}


def generator_head_variable_map(head) -> dict:
    """{original name: variable} for the generator's MLM head (`generator_predictions`)."""
    entries = _dense("generator_predictions/dense", "", head.dense)
    entries += _layer_norm("generator_predictions/LayerNorm", "", head.layer_norm)
    names = {original: variable for original, _, variable in entries}
    names["generator_predictions/output_bias"] = head.output_bias
    return names


def discriminator_head_variable_map(head) -> dict:
    """{original name: variable} for the discriminator's head (`discriminator_predictions`)."""
    entries = _dense("discriminator_predictions/dense", "", head.dense)
    entries += _dense("discriminator_predictions/dense_1", "", head.dense_1)
    return {original: variable for original, _, variable in entries}


def pretraining_variable_map(discriminator, generator=None, generator_head=None, discriminator_head=None) -> dict:
    """{original name: variable} for the discriminator and whichever pretraining networks are given."""
    names = original_variable_map(discriminator)
    if generator is not None:
        names.update(original_variable_map(generator, GENERATOR_SCOPE, include_embeddings=False))
    if generator_head is not None:
        names.update(generator_head_variable_map(generator_head))
    if discriminator_head is not None:
        names.update(discriminator_head_variable_map(discriminator_head))
    return names
