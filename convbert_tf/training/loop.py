"""The one training step and multi-step loop of pretraining and fine-tuning.

A replica's step (`replica_step`): the forward pass and loss under a GradientTape with float16
loss scaling (`scaled_gradients`), then `DynamicLossScale.apply`, which hands the gradients to `AdamWeightDecay.apply`
(all-reduce over replicas, global-norm clipping, update) or skips an overflowed step.
`make_train_loop` runs several steps per call in one tf.function; `compile_step` wraps the
replica step in XLA. After each call a run checks the loss (`check_loss`: the one
non-finite-loss policy) and reports progress (`Throughput.event` and `progress.report`).
"""

from __future__ import annotations

import time

import numpy as np
import tensorflow as tf

from convbert_tf.training.loss_scale import DynamicLossScale
from convbert_tf.training.progress import ProgressEvent


def compile_step(step_fn, jit_compile: bool):
    """`step_fn` compiled with XLA (jit_compile), else as it is (traced by the loop's tf.function)."""
    return tf.function(step_fn, jit_compile=True) if jit_compile else step_fn


def scaled_gradients(forward, variables, loss_scale: DynamicLossScale):
    """(gradients, loss, extras) of forward() -> (loss, extras), run under the tape: the loss is
    scaled for float16 and the gradients unscaled (neither, without float16)."""
    with tf.GradientTape() as tape:
        loss, extras = forward()
        scaled_loss = loss_scale.scale(loss)
    grads = loss_scale.unscale(tape.gradient(scaled_loss, variables))
    return grads, loss, extras


def replica_step(forward, summarize, variables, loss_scale: DynamicLossScale, optimizer):
    """One replica's train step: `scaled_gradients`, then `summarize(loss, extras)`, then the
    update (or, for an overflowed float16 step, the loss scale's skip). Returns the summary."""
    grads, loss, extras = scaled_gradients(forward, variables, loss_scale)
    summary = summarize(loss, extras)
    loss_scale.apply(optimizer, grads, variables)
    return summary


def make_train_loop(one_step, finish, python_steps: bool = False):
    """A function (iterator, steps) running `steps` train steps; returns `finish(totals, steps)`.

    one_step(batch) -> {name: scalar}, the step's values reduced over replicas; totals are their
    sums over the steps. One tf.function runs all steps, reading each batch inside it. With
    `python_steps`, the batches are read in Python and each step is its own tf.function call
    (a multi-worker pretraining run: a worker whose read fails on a bad record must not have
    entered a collective; it joins the others' step once it skipped the record).
    """
    if python_steps:
        compiled_step = tf.function(one_step)

        def stepwise_loop(iterator, steps):
            all_values = [compiled_step(next(iterator)) for _ in range(int(steps))]
            return finish({k: tf.add_n([values[k] for values in all_values]) for k in all_values[0]}, steps)

        return stepwise_loop

    @tf.function
    def train_loop(iterator, steps):
        totals = None
        for _ in tf.range(steps):
            values = one_step(next(iterator))
            totals = values if totals is None else {k: totals[k] + values[k] for k in values}
        return finish(totals, steps)

    return train_loop


def skipped_steps(loss_scale: DynamicLossScale) -> int:
    return int(loss_scale.skipped_steps.numpy())


def check_loss(loss: float, step: int, loss_scale: DynamicLossScale, skipped_before: int,
               last_checkpoint: str | None) -> None:
    """The non-finite-loss policy of every run: a loop whose mean loss is not finite stops the
    run, naming the step and the last good checkpoint, before anything is saved. Under float16
    dynamic loss scaling, a non-finite loss from steps the loss scale skipped (the counter rose
    during the loop) is not fatal: those steps are counted and shown in the progress lines."""
    if np.isfinite(loss):
        return
    if loss_scale.enabled and skipped_steps(loss_scale) > skipped_before:
        return
    raise FloatingPointError(f"loss is {loss} at step {step}; stopping without saving. The last good "
                             f"checkpoint is {last_checkpoint or 'none yet'}")


def counters(loss_scale: DynamicLossScale, **more) -> dict:
    """The progress counters: skipped steps under float16 loss scaling, then `more`'s nonzero ones."""
    shown = {"skipped": skipped_steps(loss_scale)} if loss_scale.enabled else {}
    shown.update({name.replace("_", " "): count for name, count in more.items() if count})
    return shown


class Throughput:
    """Steps and seconds since the last progress event: the rate and the ETA of the next one."""

    def __init__(self):
        self.restart()

    def restart(self) -> None:
        self.start, self.steps = time.perf_counter(), 0

    def add(self, steps: int) -> None:
        self.steps += steps

    def event(self, step: int, total_steps: int, losses: dict, items_per_step: int, unit: str,
              loss_note: str = "", counters: dict | None = None) -> ProgressEvent:
        """The window's progress event (rate in `unit`, ETA at the window's pace); restarts the window."""
        elapsed = time.perf_counter() - self.start
        rate = self.steps * items_per_step / max(elapsed, 1e-9)
        eta = (total_steps - step) * elapsed / max(self.steps, 1)
        self.restart()
        return ProgressEvent(step=step, total_steps=total_steps, losses=losses, rate=rate, unit=unit, eta_s=eta,
                             loss_note=loss_note, counters=counters or {})
