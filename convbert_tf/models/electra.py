"""The ELECTRA pretraining networks: generator sizing, the generator and both heads, ElectraPretrainer.

Legend: B batch, T length, P masked positions, D hidden, V vocab size, L layers, N heads.

`build_pretraining_models` creates the networks (in a fixed order: the discriminator, then the
generator and its MLM head, then the discriminator's head, so that a fixed seed gives the same
initial weights); `ElectraPretrainer` takes them built and computes the losses of one batch.
"""

from __future__ import annotations

import dataclasses
import math

import keras
import tensorflow as tf

from convbert_tf.config import ConfigError, ConvBertConfig
from convbert_tf.encoder import ConvBertEncoder
from convbert_tf.layers.masked_lm_head import MaskedLMHead
from convbert_tf.layers.replaced_token_detection_head import ReplacedTokenDetectionHead
from convbert_tf.models.electra_losses import (discriminator_losses, masked_lm_losses, normalized,
                                               sample_replacements)
from convbert_tf.pretraining.masking import gather_positions, scatter_positions


def generator_config(config: ConvBertConfig, hidden_fraction: float = 0.25,
                     layers_fraction: float = 1.0) -> ConvBertConfig:
    """The ELECTRA generator's config for a discriminator config (the original's `get_generator_config`).

    hidden = round(D * fraction), layers = round(L * layers_fraction), intermediate = 4 * hidden,
    heads = max(1, N * fraction); every other field (embedding size, groups, kernel size, head
    ratio, conv_type) is copied. The original defaults are fraction 0.25 for small and
    medium-small and 1/3 for base.
    """
    if not 0.0 < hidden_fraction <= 1.0:
        raise ConfigError(f"generator_hidden_size must be a fraction in (0, 1], got {hidden_fraction}")
    hidden = int(round(config.hidden_size * hidden_fraction))
    heads = max(1, config.num_attention_heads * hidden_fraction)
    if abs(heads - round(heads)) < 1e-6:  # 12 * (256 / 768) is 4 up to float rounding
        heads = round(heads)
    if heads != math.floor(heads):
        raise ConfigError(
            f"generator_hidden_size {hidden_fraction} gives {heads} generator heads "
            f"({config.num_attention_heads} x {hidden_fraction}); pick a fraction that gives a whole number")
    return config.replace(
        hidden_size=hidden,
        num_hidden_layers=int(round(config.num_hidden_layers * layers_fraction)),
        intermediate_size=4 * hidden,
        num_attention_heads=int(heads),
        embedding_size=config.resolved_embedding_size,
    )


@dataclasses.dataclass
class PretrainingModels:
    """The networks of ELECTRA pretraining (generator parts None when absent).

    `generator` is None for a uniform generator, and is the discriminator itself in BERT mode
    (an MLM on the full-size encoder, no `discriminator_head`). `global_step` is the step of the
    checkpoint the networks were read from, 0 for new ones.
    """

    discriminator: ConvBertEncoder
    generator: ConvBertEncoder | None
    generator_head: MaskedLMHead | None
    discriminator_head: ReplacedTokenDetectionHead | None
    global_step: int = 0


def _mlm_head(encoder: ConvBertEncoder, config: ConvBertConfig) -> MaskedLMHead:
    """The generator's MLM head (`generator_predictions`) on `encoder`'s embedding table, for
    hidden states of `config`'s width."""
    head = MaskedLMHead(encoder.embeddings, activation=config.hidden_act,
                        initializer_range=config.initializer_range, dtype=encoder.dtype_policy,
                        name="generator_predictions")
    head.build((None, None, config.hidden_size))
    return head


def build_generator(discriminator: ConvBertEncoder, hidden_fraction: float, layers_fraction: float = 1.0):
    """A generator encoder and MLM head sharing the discriminator's embedding tables."""
    config = generator_config(discriminator.config, hidden_fraction, layers_fraction)
    generator = ConvBertEncoder(config, embedding_layer=discriminator.embeddings, name="generator",
                                dtype=discriminator.dtype_policy)
    return generator, _mlm_head(discriminator, config)


def build_discriminator_head(discriminator: ConvBertEncoder) -> ReplacedTokenDetectionHead:
    """The replaced-token-detection head for a discriminator."""
    config = discriminator.config
    head = ReplacedTokenDetectionHead(config.hidden_size, activation=config.hidden_act,
                                      initializer_range=config.initializer_range,
                                      dtype=discriminator.dtype_policy, name="discriminator_predictions")
    head.build((None, None, config.hidden_size))
    return head


def build_pretraining_models(config: ConvBertConfig, generator_hidden_size=0.25, generator_layers=1.0,
                             electra_objective=True, uniform_generator=False, dtype=None) -> PretrainingModels:
    """New networks for a pretraining run.

    ELECTRA: discriminator, generator of `generator_hidden_size` x `generator_layers` its size
    with an MLM head, discriminator head. `uniform_generator`: no generator network.
    `electra_objective=False` (BERT mode): the discriminator with an MLM head, no discriminator head.
    `dtype`: the Keras dtype policy, by default the global one.
    """
    if uniform_generator and not electra_objective:
        raise ValueError("uniform_generator needs electra_objective (without a discriminator nothing "
                         "would be trained)")
    discriminator = ConvBertEncoder(config, dtype=dtype)
    generator = generator_head = None
    if electra_objective and not uniform_generator:
        generator, generator_head = build_generator(discriminator, generator_hidden_size, generator_layers)
    elif not electra_objective:
        generator, generator_head = discriminator, _mlm_head(discriminator, config)
    discriminator_head = build_discriminator_head(discriminator) if electra_objective else None
    return PretrainingModels(discriminator, generator, generator_head, discriminator_head)


def build_pretrainer(config: ConvBertConfig, generator_hidden_size=0.25, generator_layers=1.0,
                     electra_objective=True, uniform_generator=False, **objective) -> "ElectraPretrainer":
    """ElectraPretrainer on new networks (`build_pretraining_models`); `objective`: its loss
    weights, temperature and disallow_correct."""
    models = build_pretraining_models(config, generator_hidden_size, generator_layers, electra_objective,
                                      uniform_generator)
    return ElectraPretrainer(models, **objective)


class ElectraPretrainer(keras.Model):
    """ELECTRA replaced-token detection with a ConvBERT generator and discriminator (the ELECTRA
    paper, Clark et al. 2020, section 2; the original's `PretrainingModel` in run_pretraining.py).

      generator logits = MLMHead(generator(masked_input)[positions])          [B, P, V]
      mlm_loss         = weighted cross-entropy of the original tokens
      fake ids         = input ids with Gumbel-max samples at the masked positions  [B, T]
      labels           = fake ids != input ids (a correct sample counts as real)  [B, T]
      disc_loss        = sigmoid cross-entropy over all real tokens
      total_loss       = gen_weight * mlm_loss + disc_weight * disc_loss

    The generator shares the discriminator's embedding tables; its MLM output matrix is the
    transposed word-embedding table. Samples carry no gradient into the generator.

    The objective follows from the networks given (`build_pretraining_models` makes them):
    without a generator network (a uniform generator, as in the original) the generator logits
    are zeros (the same Gumbel-max sampling then draws uniformly over the whole vocab) and the
    MLM loss is the constant log V, which trains nothing. Without a discriminator head only the
    MLM is trained (BERT mode: the "generator" is the discriminator itself) and there is no
    discriminator loss.
    """

    def __init__(self, models: PretrainingModels, gen_weight=1.0, disc_weight=50.0, temperature=1.0,
                 disallow_correct=False, **kwargs):
        super().__init__(name="pretrainer", **kwargs)
        if models.generator is None and models.discriminator_head is None:
            raise ValueError("ElectraPretrainer: a uniform generator needs a discriminator head (without a "
                             "discriminator nothing would be trained)")
        self.electra_objective = models.discriminator_head is not None
        self.uniform_generator = models.generator is None
        self.gen_weight = gen_weight
        self.disc_weight = disc_weight
        self.temperature = temperature
        self.disallow_correct = disallow_correct
        self.vocab_size = models.discriminator.config.vocab_size
        # Tracked in this order (the order of trainable_variables and of the dropout states).
        self.discriminator = models.discriminator
        self.generator = models.generator
        self.generator_head = models.generator_head
        self.discriminator_head = models.discriminator_head
        self.built = True

    def networks(self) -> dict:
        """The networks a training checkpoint holds, by their checkpoint names: `encoder` (the
        discriminator), and `generator`, `generator_head`, `discriminator_head` where they exist."""
        named = dict(encoder=self.discriminator, generator=self.generator, generator_head=self.generator_head,
                     discriminator_head=self.discriminator_head)
        return {name: network for name, network in named.items() if network is not None}

    def generator_logits(self, features, training=None):
        """[B, P, V] generator logits at the masked positions: zeros for the uniform generator."""
        if self.uniform_generator:
            positions_shape = tf.shape(features["masked_lm_positions"])  # [2] = (B, P)
            return tf.zeros(tf.concat([positions_shape, [self.vocab_size]], 0), tf.float32)  # [B, P, V]
        generator_out = self.generator({"input_ids": features["masked_input_ids"],
                                        "input_mask": features["input_mask"],
                                        "segment_ids": features["segment_ids"]}, training=training)
        masked_hidden = gather_positions(generator_out["sequence_output"], features["masked_lm_positions"])  # [B, P, D]
        return self.generator_head(masked_hidden)  # [B, P, V]

    def call(self, features, training=None):
        """Losses and metric inputs for one batch.

        Args:
          features: `input_ids`, `input_mask`, `segment_ids` [B, T], the masking outputs
            `masked_input_ids` [B, T], `masked_lm_positions`, `masked_lm_ids`,
            `masked_lm_weights` [B, P], and `sampling_seeds` [B, 2] for the Gumbel sampling.
          training: dropout switch.

        Returns:
          A dict of scalars (`total_loss`, `mlm_loss`, `disc_loss`) and tensors used by metrics:
          `mlm_losses` [B, P] (-log p per slot) and `disc_example_losses` [B] (each sequence's
          mean over its real tokens) among them.
        """
        weights = tf.cast(features["masked_lm_weights"], tf.float32)  # [B, P]
        mlm_logits = self.generator_logits(features, training)  # [B, P, V]
        mlm_losses = masked_lm_losses(mlm_logits, features["masked_lm_ids"])  # [B, P]
        mlm_loss_sum = tf.reduce_sum(weights * mlm_losses)
        mlm_weight_sum = tf.reduce_sum(weights)
        outputs = {"mlm_loss": normalized(mlm_loss_sum, mlm_weight_sum), "mlm_loss_sum": mlm_loss_sum,
                   "mlm_weight_sum": mlm_weight_sum, "mlm_logits": mlm_logits, "mlm_losses": mlm_losses,
                   "masked_lm_weights": weights, "masked_lm_ids": features["masked_lm_ids"]}
        if not self.electra_objective:
            outputs["total_loss"] = outputs["mlm_loss"]
            return outputs

        sampled = sample_replacements(
            mlm_logits, features["sampling_seeds"], self.temperature,
            original_ids=features["masked_lm_ids"] if self.disallow_correct else None)  # [B, P]
        fake_ids = scatter_positions(features["input_ids"], features["masked_lm_positions"], sampled,
                                     weights)  # [B, T]
        labels = tf.cast(tf.not_equal(fake_ids, tf.cast(features["input_ids"], fake_ids.dtype)), tf.int32)  # [B, T]
        discriminator_out = self.discriminator({"input_ids": fake_ids, "input_mask": features["input_mask"],
                                                "segment_ids": features["segment_ids"]}, training=training)
        disc_logits = self.discriminator_head(discriminator_out["sequence_output"])  # [B, T]
        disc_losses = discriminator_losses(disc_logits, labels, features["input_mask"])  # [B, T]
        mask = tf.cast(features["input_mask"], tf.float32)  # [B, T]
        disc_loss_sum = tf.reduce_sum(disc_losses)
        disc_weight_sum = tf.reduce_sum(mask)
        outputs.update(
            disc_loss=normalized(disc_loss_sum, disc_weight_sum), disc_loss_sum=disc_loss_sum,
            disc_weight_sum=disc_weight_sum, disc_logits=disc_logits, disc_labels=labels, sampled_ids=sampled,
            disc_example_losses=normalized(tf.reduce_sum(disc_losses, -1), tf.reduce_sum(mask, -1)))  # [B]
        outputs["total_loss"] = self.total_loss(outputs)
        return outputs

    def total_loss(self, outputs, mlm_weight_sum=None, disc_weight_sum=None):
        """gen_weight * MLM loss + disc_weight * discriminator loss.

        The normalizers default to this batch's; a replica passes the global batch's so that
        the replicas' losses add up to the loss of the whole batch on one device.
        """
        mlm_weight_sum = outputs["mlm_weight_sum"] if mlm_weight_sum is None else mlm_weight_sum
        loss = self.gen_weight * normalized(outputs["mlm_loss_sum"], mlm_weight_sum)
        if self.electra_objective:
            disc_weight_sum = outputs["disc_weight_sum"] if disc_weight_sum is None else disc_weight_sum
            loss += self.disc_weight * normalized(outputs["disc_loss_sum"], disc_weight_sum)
        return loss
