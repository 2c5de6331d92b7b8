"""ElectraPretrainer: generator, Gumbel sampling, discriminator and the replaced-token-detection loss.

Legend: B batch, T length, P masked positions, D hidden, V vocab size.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from convbert_tf import ops
from convbert_tf.checkpoints import build_discriminator_head, build_generator
from convbert_tf.config import ConvBertConfig
from convbert_tf.encoder import ConvBertEncoder
from convbert_tf.layers.masked_lm_head import MaskedLMHead
from convbert_tf.pretraining.masking import gather_positions, scatter_positions

# Keeps the log of a zero uniform draw finite (the original's value).
GUMBEL_EPSILON = 1e-9


def gumbel_noise(shape, seed, xla=False):
    """g = -log(-log(u + 1e-9) + 1e-9), u ~ U(0, 1), from a stateless seed [2]; `xla` (traced
    for XLA) picks the generator, ops.RNG_ALGORITHM."""
    uniform = tf.random.stateless_uniform(shape, seed, dtype=tf.float32, alg=ops.RNG_ALGORITHM[xla])
    return -tf.math.log(-tf.math.log(uniform + GUMBEL_EPSILON) + GUMBEL_EPSILON)


def per_example_gumbel_noise(shape, example_seeds):
    """Gumbel noise [B, ...] drawn row by row from per-example seeds [B, 2].

    Per-example seeds make a step's randomness independent of how the global batch is
    split over replicas, and of where a resumed run restarts. Under XLA compilation with a
    static batch size the rows are drawn one op each: XLA runs a `map_fn` loop serially,
    about 8x slower here.
    """
    xla = ops.in_xla_compilation()
    batch_size = example_seeds.shape[0]
    if xla and batch_size is not None:
        return tf.stack([gumbel_noise(shape[1:], example_seeds[i], xla) for i in range(batch_size)])  # [B, ...]
    return tf.map_fn(lambda seed: gumbel_noise(shape[1:], seed, xla), example_seeds,
                     fn_output_signature=tf.float32)  # [B, ...]


def sample_replacements(logits, example_seeds, temperature=1.0, original_ids=None):
    """Gumbel-max sample of one token per slot: argmax(logits / temperature - 1000·[correct] + g).

    As the original, the logits are divided by the temperature first and the correct token's
    penalty is subtracted after, so it stays -1000 whatever the temperature.

    Args:
      logits: [B, P, V] generator logits (float32).
      example_seeds: [B, 2] stateless seeds, one per example.
      temperature: sampling temperature.
      original_ids: [B, P]; when given, those tokens get -1000 (disallow_correct).

    Returns:
      [B, P] int32 sampled ids (no gradient flows through them).
    """
    logits = tf.stop_gradient(tf.cast(logits, tf.float32)) / temperature  # [B, P, V]
    if original_ids is not None:
        logits -= 1000.0 * tf.one_hot(original_ids, tf.shape(logits)[-1], dtype=logits.dtype)  # [B, P, V]
    noisy = logits + per_example_gumbel_noise(tf.shape(logits), example_seeds)  # [B, P, V]
    return tf.argmax(noisy, axis=-1, output_type=tf.int32)  # [B, P]


def masked_lm_losses(logits, labels):
    """-log p(label) per slot; logits [B, P, V], labels [B, P] -> [B, P] float32.

    The MLM loss is sum(w · losses) / (sum w + 1e-6); the sum and the normalizer are kept apart
    so that a batch split over replicas can be normalized by the global weight.
    """
    log_probs = tf.nn.log_softmax(tf.cast(logits, tf.float32), axis=-1)  # [B, P, V]
    return -tf.gather(log_probs, labels, batch_dims=2)  # [B, P]


def discriminator_losses(logits, labels, input_mask):
    """Sigmoid cross-entropy per token, 0 on padding; logits, labels, input_mask [B, T] -> [B, T]."""
    mask = tf.cast(input_mask, tf.float32)  # [B, T]
    losses = tf.nn.sigmoid_cross_entropy_with_logits(labels=tf.cast(labels, tf.float32),
                                                     logits=tf.cast(logits, tf.float32))  # [B, T]
    return losses * mask  # [B, T]


def normalized(loss_sum, weight_sum):
    """loss_sum / (weight_sum + 1e-6), the original's normalization."""
    return loss_sum / (weight_sum + 1e-6)


class ElectraPretrainer(keras.Model):
    """ELECTRA replaced-token detection with a ConvBERT generator and discriminator (reference §4.3).

      generator logits = MLMHead(generator(masked_input)[positions])          [B, P, V]
      mlm_loss         = weighted cross-entropy of the original tokens
      fake ids         = input ids with Gumbel-max samples at the masked positions  [B, T]
      labels           = fake ids != input ids (a correct sample counts as real)  [B, T]
      disc_loss        = sigmoid cross-entropy over all real tokens
      total_loss       = gen_weight * mlm_loss + disc_weight * disc_loss

    The generator shares the discriminator's embedding tables; its MLM output matrix is the
    transposed word-embedding table. Samples carry no gradient into the generator.

    With `uniform_generator=True` there is no generator network, as in the original: the
    generator logits are zeros (the same Gumbel-max sampling then draws uniformly over the
    whole vocab) and the MLM loss is the constant log V, which trains nothing.

    With `electra_objective=False` only a full-size MLM model is trained (BERT mode): the
    "generator" is the discriminator-size encoder and there is no discriminator loss.
    """

    def __init__(self, config: ConvBertConfig, generator_hidden_size=0.25, generator_layers=1.0,
                 electra_objective=True, gen_weight=1.0, disc_weight=50.0, temperature=1.0,
                 uniform_generator=False, disallow_correct=False, **kwargs):
        super().__init__(name="pretrainer", **kwargs)
        if uniform_generator and not electra_objective:
            raise ValueError("ElectraPretrainer: uniform_generator needs electra_objective (without a "
                             "discriminator nothing would be trained)")
        self.electra_objective = electra_objective
        self.gen_weight = gen_weight
        self.disc_weight = disc_weight
        self.temperature = temperature
        self.uniform_generator = uniform_generator
        self.disallow_correct = disallow_correct
        self.vocab_size = config.vocab_size
        self.discriminator = ConvBertEncoder(config, dtype=self.dtype_policy)
        self.generator = self.generator_head = self.discriminator_head = None
        if uniform_generator:
            self.discriminator_head = build_discriminator_head(self.discriminator)
        elif electra_objective:
            self.generator, self.generator_head = build_generator(
                self.discriminator, generator_hidden_size, generator_layers)
            self.discriminator_head = build_discriminator_head(self.discriminator)
        else:
            self.generator = self.discriminator
            self.generator_head = MaskedLMHead(self.discriminator.embeddings, activation=config.hidden_act,
                                               initializer_range=config.initializer_range,
                                               dtype=self.dtype_policy, name="generator_predictions")
            self.generator_head.build((None, None, config.hidden_size))
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


def step_metric_sums(outputs, input_mask):
    """{metric: (numerator, denominator)} of one batch; sums add up across replicas."""
    weights = outputs["masked_lm_weights"]
    labels = outputs["masked_lm_ids"]
    predicted = tf.argmax(outputs["mlm_logits"], axis=-1, output_type=tf.int32)
    weight_sum = tf.reduce_sum(weights)
    sums = {
        "mlm_loss": (outputs["mlm_loss_sum"], weight_sum),
        "masked_lm_accuracy": (tf.reduce_sum(weights * tf.cast(tf.equal(predicted, labels), tf.float32)),
                               weight_sum),
    }
    if "disc_loss" in outputs:
        mask = tf.cast(input_mask, tf.float32)
        fake = tf.cast(outputs["disc_labels"], tf.float32)
        predicted_fake = tf.cast(outputs["disc_logits"] > 0, tf.float32)
        mask_sum = tf.reduce_sum(mask)
        sums.update(
            disc_loss=(outputs["disc_loss_sum"], mask_sum),
            disc_accuracy=(tf.reduce_sum(mask * tf.cast(tf.equal(predicted_fake, fake), tf.float32)), mask_sum),
            sampled_masked_lm_accuracy=(
                tf.reduce_sum(weights * tf.cast(tf.equal(outputs["sampled_ids"], labels), tf.float32)), weight_sum),
        )
    return sums
