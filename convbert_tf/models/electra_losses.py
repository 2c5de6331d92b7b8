"""The ELECTRA objective's math: Gumbel-max sampling of replacements, the per-slot MLM and
per-token discriminator losses, their normalization, and the metric sums of one step.

Legend: B batch, T length, P masked positions, V vocab size.

Plain functions of tensors, used by ElectraPretrainer (models/electra.py) and the training step.
"""

from __future__ import annotations

import tensorflow as tf

from convbert_tf import ops

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
