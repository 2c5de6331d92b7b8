"""Dynamic loss scaling for float16 training in a custom loop (a no-op for other dtypes)."""

import keras
import tensorflow as tf

# Start high, halve on every step with a non-finite gradient, double after this many good steps.
INITIAL_LOSS_SCALE = 2.0 ** 15
GROWTH_STEPS = 2000


class DynamicLossScale(tf.Module):
    """Scales the loss up so float16 gradients do not underflow; skips steps whose gradients overflow.

    Use in replica context (inside `strategy.run`):

        grads = loss_scale.unscale(tape.gradient(loss_scale.scale(loss), variables))
        loss_scale.apply(optimizer, grads, variables)

    A skipped step still advances `optimizer.iterations`, so the learning-rate schedule and the
    checkpoint numbering stay on the step count. `skipped_steps` counts them.
    """

    def __init__(self, enabled: bool, name="loss_scale"):
        super().__init__(name=name)
        self.enabled = enabled
        self.scale_value = tf.Variable(INITIAL_LOSS_SCALE if enabled else 1.0, trainable=False, dtype=tf.float32,
                                       name="scale")
        self.good_steps = tf.Variable(0, trainable=False, dtype=tf.int64, name="good_steps")
        self.skipped_steps = tf.Variable(0, trainable=False, dtype=tf.int64, name="skipped_steps")

    def scale(self, loss):
        return loss * self.scale_value if self.enabled else loss

    def unscale(self, grads):
        return [g / self.scale_value for g in grads] if self.enabled else grads

    def apply(self, optimizer, grads, variables):
        """Applies the gradients, or (float16, some replica's gradients not finite) skips the step."""
        if not self.enabled:
            optimizer.apply(grads, variables)
            return
        finite = tf.reduce_all([tf.reduce_all(tf.math.is_finite(g)) for g in grads])
        replica = tf.distribute.get_replica_context()
        bad = replica.all_reduce("sum", tf.cast(tf.logical_not(finite), tf.float32))

        def apply_and_grow():
            optimizer.apply(grads, variables)
            replica_context = tf.distribute.get_replica_context()
            replica_context.merge_call(lambda _: self._grow())
            return tf.constant(True)

        def skip():
            tf.distribute.get_replica_context().merge_call(lambda _: self._skip(optimizer))
            return tf.constant(False)

        tf.cond(bad > 0, skip, apply_and_grow)

    def _grow(self):
        self.good_steps.assign_add(1)
        grow = self.good_steps >= GROWTH_STEPS
        self.scale_value.assign(tf.where(grow, self.scale_value * 2.0, self.scale_value))
        self.good_steps.assign(tf.where(grow, tf.zeros_like(self.good_steps), self.good_steps))

    def _skip(self, optimizer):
        self.scale_value.assign(tf.maximum(self.scale_value / 2.0, 1.0))
        self.good_steps.assign(0)
        self.skipped_steps.assign_add(1)
        optimizer.iterations.assign_add(1)


def loss_scale_for_global_policy() -> DynamicLossScale:
    """Enabled when the Keras global dtype policy computes in float16 (--mixed_precision=float16)."""
    return DynamicLossScale(keras.mixed_precision.global_policy().compute_dtype == "float16")
