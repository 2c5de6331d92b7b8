"""SIGKILL at any point of a pretraining or fine-tuning run, then the same command again.

Each case kills a real process (a mid-training kill from outside, timed by the run's log; a
kill inside a checkpoint or export write planted by tests/kill_child.py), reruns the same
command, and checks that nothing partial was picked up and that the final weights equal an
uninterrupted seeded run's, variable by variable.
"""

import glob
import json
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from convbert_tf import io
from convbert_tf.pretraining import run as trainer
from finetuning_data import HPARAMS as FINETUNING_HPARAMS
from finetuning_data import write_pretrained, write_sst
from pretraining_data import TINY_HPARAMS, write_data_dir

pytestmark = pytest.mark.slow

from repo_paths import ROOT
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
# 24 steps, a checkpoint every 8, a log line every step. A kill from outside after step 9's
# line has 7 steps (about half a second) to land before ckpt-16 is recorded.
PRETRAINING = dict(TINY_HPARAMS, num_train_steps=24, save_checkpoints_steps=8, iterations_per_loop=1,
                   log_every_steps=1, export_at_end=True)
# 640 examples / batch 16 = 40 steps, a checkpoint every 20 (fine-tuning steps are quicker:
# 19 steps of margin for the kill after step 21's line).
FINETUNING = dict(FINETUNING_HPARAMS, task_names=["sst"], num_train_epochs=1.0, iterations_per_loop=1,
                  save_checkpoints_steps=20, write_test_outputs=False)


def pretraining_args(data_dir, name, **changes):
    return ["run_pretraining.py", f"--data_dir={data_dir}", f"--model_name={name}",
            f"--hparams={json.dumps(dict(PRETRAINING, **changes))}"]


def finetuning_args(data_dir, name):
    return ["run_finetuning.py", f"--data_dir={data_dir}", f"--model_name={name}",
            f"--hparams={json.dumps(FINETUNING)}"]


def launch(args, log_path, kill_point=None):
    planted = ["tests/kill_child.py", kill_point] if kill_point else []
    with open(log_path, "w") as log:
        return subprocess.Popen([sys.executable] + planted + args, cwd=ROOT, env=ENV, stdout=log,
                                stderr=subprocess.STDOUT)


def read(path):
    with open(path) as f:
        return f.read()


def finish(proc, log_path, timeout=300):
    """Waits for the process; returns its log."""
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail(f"{proc.args} did not finish in {timeout}s:\n{read(log_path)[-3000:]}")
    return read(log_path)


def run_killed_inside(args, log_path, kill_point):
    """Runs args under kill_child.py; asserts that the planted SIGKILL ended it."""
    proc = launch(args, log_path, kill_point)
    log = finish(proc, log_path)
    assert proc.returncode == -signal.SIGKILL and "kill_child: SIGKILL inside" in log, log[-3000:]
    return log


def kill_when_logged(args, log_path, line, timeout=300):
    """Starts the run and SIGKILLs it from outside as soon as `line` is in its log."""
    proc = launch(args, log_path)
    deadline = time.monotonic() + timeout
    while line not in read(log_path):
        if proc.poll() is not None:
            pytest.fail(f"the run ended (exit {proc.returncode}) before logging {line!r}:\n{read(log_path)[-3000:]}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"no {line!r} in {timeout}s:\n{read(log_path)[-3000:]}")
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    return read(log_path)


def run_to_the_end(args, log_path):
    proc = launch(args, log_path)
    log = finish(proc, log_path)
    assert proc.returncode == 0, log[-3000:]
    return log


def latest(directory):
    prefix = tf.train.latest_checkpoint(directory)
    return prefix and os.path.basename(prefix)


def assert_same_variables(expected_prefix, actual_prefix):
    """Every variable of two checkpoints (weights, optimizer slots, step, random states) is equal."""
    expected, actual = tf.train.load_checkpoint(expected_prefix), tf.train.load_checkpoint(actual_prefix)
    names = sorted(expected.get_variable_to_shape_map())
    assert names == sorted(actual.get_variable_to_shape_map())
    assert len(names) > 20
    for name in names:
        want, got = np.asarray(expected.get_tensor(name)), np.asarray(actual.get_tensor(name))
        if want.dtype.kind == "f":
            np.testing.assert_allclose(got, want, rtol=0, atol=1e-6, err_msg=name)
        else:
            np.testing.assert_array_equal(got, want, err_msg=name)


def leftovers(directory):
    """Temporary names of interrupted writes anywhere under directory."""
    found = []
    for folder, dirs, files in os.walk(directory):
        found += [os.path.join(folder, n) for n in dirs + files if ".tmp" in n or ".old-" in n or n.endswith("_temp")]
    return found


# ----- pretraining -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def pretraining(tmp_path_factory):
    """A data dir and the uninterrupted seeded run ("whole") that every killed run must match."""
    data_dir = write_data_dir(str(tmp_path_factory.mktemp("kill_pretraining")))
    run_to_the_end(pretraining_args(data_dir, "whole"), os.path.join(data_dir, "whole.log"))
    return data_dir, os.path.join(data_dir, "models", "whole")


def test_sigkill_mid_step_then_inside_a_checkpoint_write_resumes_to_the_same_weights(pretraining):
    data_dir, whole = pretraining
    args = pretraining_args(data_dir, "killed", export_at_end=False)
    model_dir = os.path.join(data_dir, "models", "killed")

    # 1. Killed from outside during training, between ckpt-8 and ckpt-16.
    log = kill_when_logged(args, os.path.join(data_dir, "killed1.log"), "step 9/24")
    assert latest(model_dir) == "ckpt-8", f"the kill did not land between ckpt-8 and ckpt-16:\n{log[-2000:]}"

    # 2. The same command resumes from ckpt-8 and is killed inside the write of ckpt-16: the torn
    #    ckpt-16 is on disk under its final name, and the state file still names ckpt-8.
    log = run_killed_inside(args, os.path.join(data_dir, "killed2.log"), "checkpoint:16")
    assert f"resuming from {model_dir}/ckpt-8 at step 8" in log
    assert os.path.getsize(os.path.join(model_dir, "ckpt-16.index")) < os.path.getsize(
        os.path.join(whole, "ckpt-16.index"))
    assert latest(model_dir) == "ckpt-8"

    # 3. The same command again: from ckpt-8 (never the torn ckpt-16) to the end.
    log = run_to_the_end(args, os.path.join(data_dir, "killed3.log"))
    assert f"resuming from {model_dir}/ckpt-8 at step 8" in log
    assert latest(model_dir) == "ckpt-24"
    assert_same_variables(os.path.join(whole, "ckpt-16"), os.path.join(model_dir, "ckpt-16"))  # rewritten whole
    assert_same_variables(os.path.join(whole, "ckpt-24"), os.path.join(model_dir, "ckpt-24"))
    assert not leftovers(model_dir)


def test_sigkill_inside_the_exports_never_leaves_one_that_looks_complete(pretraining):
    data_dir, whole = pretraining
    args = pretraining_args(data_dir, "killed_in_export")
    model_dir = os.path.join(data_dir, "models", "killed_in_export")
    saved_model = os.path.join(model_dir, "saved_model")
    original_layout = os.path.join(model_dir, "original_layout")

    # 1. Killed inside the SavedModel write, after training: only a hidden temporary directory.
    run_killed_inside(args, os.path.join(data_dir, "export1.log"), "saved_model")
    assert latest(model_dir) == "ckpt-24"
    assert not os.path.exists(saved_model)
    assert glob.glob(os.path.join(model_dir, ".saved_model.tmp-*"))

    # 2. The rerun exports; killed inside the original-layout write, after the SavedModel.
    log = run_killed_inside(args, os.path.join(data_dir, "export2.log"), "original_layout")
    assert "already trained to step 24" in log and "removed 1 partial write(s)" in log
    assert os.path.exists(os.path.join(saved_model, "saved_model.pb"))
    assert latest(original_layout) is None and glob.glob(os.path.join(original_layout, io.TEMPORARY_GLOB))

    # 3. The rerun sees the export is incomplete, clears the leftovers and finishes it.
    log = run_to_the_end(args, os.path.join(data_dir, "export3.log"))
    assert "removed 1 partial write(s) of an interrupted run: original_layout/.model.ckpt-24.tmp-" in log
    assert f"exported {saved_model}" in log
    assert not leftovers(model_dir)
    assert latest(original_layout) == "model.ckpt-24"
    assert_same_variables(os.path.join(whole, "original_layout", "model.ckpt-24"),
                          os.path.join(original_layout, "model.ckpt-24"))
    assert_same_variables(os.path.join(whole, "saved_model", "variables", "variables"),
                          os.path.join(saved_model, "variables", "variables"))

    # Complete now: a rerun would not export again.
    assert trainer.export_complete(model_dir, 24)
    assert not trainer.export_complete(model_dir, 32)


# ----- fine-tuning -----------------------------------------------------------------------------

def test_fine_tuning_sigkill_mid_training_and_inside_the_export_resumes_to_the_same_weights(tmp_path):
    data_dir = str(tmp_path)
    for name in ("whole", "killed"):  # the same seeded "pretrained" encoder under two names
        write_pretrained(data_dir, model_name=name)
    write_sst(data_dir, n_train=640, n_dev=32)
    run_to_the_end(finetuning_args(data_dir, "whole"), str(tmp_path / "whole.log"))
    whole = os.path.join(data_dir, "models", "whole", "finetuning_models", "sst_model_1")
    trial_dir = os.path.join(data_dir, "models", "killed", "finetuning_models", "sst_model_1")
    args = finetuning_args(data_dir, "killed")

    log = kill_when_logged(args, str(tmp_path / "killed1.log"), "step 21/40")
    assert latest(trial_dir) == "ckpt-20", f"the kill did not land between ckpt-20 and ckpt-40:\n{log[-2000:]}"

    # Resumes, trains to the end, scores dev, and is killed inside the export.
    log = run_killed_inside(args, str(tmp_path / "killed2.log"), "saved_model")
    assert f"trial 1: resuming from {trial_dir}/ckpt-20 at step 20" in log
    assert_same_variables(os.path.join(whole, "ckpt-40"), os.path.join(trial_dir, "ckpt-40"))
    assert not os.path.exists(os.path.join(trial_dir, "saved_model", "sst"))

    log = run_to_the_end(args, str(tmp_path / "killed3.log"))
    assert f"trial 1: resuming from {trial_dir}/ckpt-40 at step 40" in log
    assert "removed 1 partial write(s)" in log and not re.search(r"^step \d+/", log, re.M)  # no training
    assert not leftovers(trial_dir)
    assert_same_variables(os.path.join(whole, "saved_model", "sst", "variables", "variables"),
                          os.path.join(trial_dir, "saved_model", "sst", "variables", "variables"))
    assert read(os.path.join(whole, "dev_predictions", "sst_dev.json")) == read(
        os.path.join(trial_dir, "dev_predictions", "sst_dev.json"))
