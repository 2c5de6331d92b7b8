"""Dynamic loss scaling: overflowing steps are skipped and shrink the scale; good steps grow it."""

import numpy as np
import tensorflow as tf

from convbert_tf.training import loss_scale as loss_scale_lib
from convbert_tf.training.loss_scale import DynamicLossScale
from convbert_tf.training.optimizer import AdamWeightDecay


def test_skips_non_finite_steps_and_grows_after_good_ones(monkeypatch):
    monkeypatch.setattr(loss_scale_lib, "GROWTH_STEPS", 2)
    strategy = tf.distribute.OneDeviceStrategy("/cpu:0")
    with strategy.scope():
        variable = tf.Variable([1.0, 2.0], name="w")
        optimizer = AdamWeightDecay(0.1, weight_decay_rate=0.0)
        optimizer.build([variable])
        scale = DynamicLossScale(enabled=True)

    @tf.function
    def step(grad):
        strategy.run(lambda g: scale.apply(optimizer, scale.unscale([g * scale.scale_value]), [variable]),
                     args=(grad,))

    start = scale.scale_value.numpy()
    step(tf.constant([np.inf, 1.0]))
    assert scale.skipped_steps.numpy() == 1 and scale.scale_value.numpy() == start / 2
    np.testing.assert_array_equal(variable.numpy(), [1.0, 2.0])  # not applied
    assert optimizer.iterations.numpy() == 1  # the schedule still advances
    step(tf.constant([0.5, 0.5]))
    step(tf.constant([0.5, 0.5]))
    assert scale.scale_value.numpy() == start  # grew back after 2 good steps
    assert not np.array_equal(variable.numpy(), [1.0, 2.0])
    assert optimizer.iterations.numpy() == 3


def test_disabled_scale_is_the_identity():
    scale = DynamicLossScale(enabled=False)
    assert float(scale.scale(tf.constant(3.0))) == 3.0
    assert scale.unscale([tf.constant(2.0)])[0].numpy() == 2.0
