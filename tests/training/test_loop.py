"""training/loop.py: the replica step, the multi-step loop, the non-finite-loss policy of both
runs, float16 skipped steps, and the throughput behind progress events."""

import io
import os

import numpy as np
import pytest
import tensorflow as tf
from finetuning_data import HPARAMS as FINETUNING_HPARAMS
from finetuning_data import write_pretrained, write_sst
from pretraining_data import TINY_HPARAMS, write_data_dir

from convbert_tf.finetuning.hparams import resolve_finetuning_hparams
from convbert_tf.finetuning.run import run_finetuning
from convbert_tf.pretraining import run as pretraining_run
from convbert_tf.pretraining.hparams import resolve_hparams
from convbert_tf.training import loop
from convbert_tf.training.loss_scale import DynamicLossScale
from convbert_tf.training.optimizer import AdamWeightDecay
from convbert_tf.training.progress import format_line

CPU = tf.distribute.OneDeviceStrategy("/cpu:0")


def toy_loop(loss_scale_enabled, python_steps=False):
    """A one-weight regression under the shared loop: (train_loop, weight, loss scale, optimizer)."""
    with CPU.scope():
        weight = tf.Variable([1.0], name="w")
        optimizer = AdamWeightDecay(0.1)
        optimizer.build([weight])
        loss_scale = DynamicLossScale(loss_scale_enabled)

    def step(batch):
        def forward():
            return tf.reduce_sum(tf.square(weight * batch["x"] - batch["y"])), batch["x"]

        return loop.replica_step(forward, lambda loss, x: {"loss": loss, "rows": tf.cast(tf.size(x), tf.float32)},
                                 [weight], loss_scale, optimizer)

    def one_step(batch):
        values = CPU.run(loop.compile_step(step, jit_compile=False), args=(batch,))
        return {k: CPU.reduce("sum", v, axis=None) for k, v in values.items()}

    def mean(totals, steps):
        return {"loss": totals["loss"] / tf.cast(steps, tf.float32), "rows": totals["rows"]}

    return loop.make_train_loop(one_step, mean, python_steps), weight, loss_scale, optimizer


def batches(xs):
    data = {"x": np.array(xs, np.float32)[:, None], "y": np.ones([len(xs), 1], np.float32)}
    return iter(CPU.experimental_distribute_dataset(tf.data.Dataset.from_tensor_slices(data).batch(1)))


def test_loop_returns_the_mean_over_its_steps_and_both_loop_forms_agree():
    results = {}
    for python_steps in (False, True):
        train_loop, weight, _, optimizer = toy_loop(False, python_steps)
        values = train_loop(batches([1.0, 2.0, 3.0]), tf.constant(3))
        results[python_steps] = (float(values["loss"]), float(values["rows"]), weight.numpy().copy())
        assert int(optimizer.iterations.numpy()) == 3
    assert results[False][1] == 3.0  # the totals are sums over the steps
    assert results[False][0] == pytest.approx(results[True][0], rel=1e-6)
    np.testing.assert_allclose(results[False][2], results[True][2], rtol=1e-6)
    assert results[False][2][0] != 1.0  # the steps did update the weight


def test_float16_loss_scale_skips_and_counts_an_overflowed_step():
    train_loop, weight, loss_scale, optimizer = toy_loop(True)
    skipped_before = loop.skipped_steps(loss_scale)
    values = train_loop(batches([1.0, np.inf, 2.0]), tf.constant(3))
    loss = float(values["loss"])
    assert not np.isfinite(loss)
    assert loop.skipped_steps(loss_scale) == skipped_before + 1  # counted
    assert int(optimizer.iterations.numpy()) == 3  # the skipped step still counts as a step
    assert np.isfinite(weight.numpy()).all()  # and did not touch the weight
    loop.check_loss(loss, 3, loss_scale, skipped_before, None)  # not fatal
    assert loop.counters(loss_scale) == {"skipped": 1}


def test_non_finite_loss_stops_naming_the_step_and_the_last_good_checkpoint():
    for enabled in (False, True):
        loss_scale = DynamicLossScale(enabled)
        with pytest.raises(FloatingPointError, match=r"loss is nan at step 7; .* last good checkpoint is /m/ckpt-4"):
            # Under float16 too, when no step was skipped during the loop.
            loop.check_loss(float("nan"), 7, loss_scale, loop.skipped_steps(loss_scale), "/m/ckpt-4")
    with pytest.raises(FloatingPointError, match="checkpoint is none yet"):
        loop.check_loss(float("inf"), 1, DynamicLossScale(False), 0, None)
    loop.check_loss(1.5, 1, DynamicLossScale(False), 0, None)


def test_throughput_events_and_counters():
    window = loop.Throughput()
    window.add(4)
    event = window.event(8, 10, {"loss": 0.5}, 16, "examples/s", loss_note="per example",
                         counters=loop.counters(DynamicLossScale(False), bad_records=0))
    assert (event.step, event.total_steps, event.unit, event.counters) == (8, 10, "examples/s", {})
    assert event.rate > 0 and event.eta_s >= 0
    assert window.steps == 0  # an event restarts the window
    assert format_line(event).startswith("step 8/10 | loss 0.5000 per example | ")
    assert loop.counters(DynamicLossScale(True), bad_records=2) == {"skipped": 0, "bad records": 2}


@pytest.mark.slow  # end to end: CI runs it in the slow tier
def test_pretraining_stops_on_a_non_finite_loss_naming_the_last_good_checkpoint(tmp_path):
    data_dir = write_data_dir(str(tmp_path))

    def hparams(**changes):
        values = dict(TINY_HPARAMS, num_train_steps=6, save_checkpoints_steps=2, iterations_per_loop=1, **changes)
        return resolve_hparams(values, data_dir=data_dir, model_name="nan")

    pretraining_run.train(hparams(), CPU, out=io.StringIO(), stop_at_step=2)
    exploding = hparams(learning_rate=1e30, num_warmup_steps=0)
    with pytest.raises(FloatingPointError, match="at step 4") as err:
        pretraining_run.train(exploding, CPU, out=io.StringIO())
    assert "last good checkpoint is" in str(err.value) and str(err.value).endswith("ckpt-2")
    # Step 3's weights were saved (a finite loss), step 4's were not.
    assert os.path.basename(tf.train.latest_checkpoint(exploding.model_dir)) == "ckpt-2"


@pytest.mark.slow  # end to end: CI runs it in the slow tier
def test_fine_tuning_stops_on_a_non_finite_loss_naming_the_last_good_checkpoint(tmp_path):
    data_dir = str(tmp_path)
    write_pretrained(data_dir)
    write_sst(data_dir, n_train=16, n_dev=16)
    hp = resolve_finetuning_hparams(dict(FINETUNING_HPARAMS, task_names=["sst"], num_train_epochs=3.0,
                                         iterations_per_loop=1, save_checkpoints_steps=1, learning_rate=1e30,
                                         warmup_proportion=0.0, do_eval=False),
                                    data_dir=data_dir, model_name="tiny")
    out = io.StringIO()
    with pytest.raises(FloatingPointError, match="at step 2") as err:
        run_finetuning(hp, CPU, out=out)
    assert str(err.value).endswith(os.path.join("sst_model_1", "ckpt-1")), err.value
    assert "step 1/3 | loss " in out.getvalue() and " per example | " in out.getvalue()
