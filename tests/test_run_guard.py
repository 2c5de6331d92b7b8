"""Failure handling of pretraining runs: one run per model_dir, SIGTERM, non-finite losses."""

import io
import json
import os
import signal
import subprocess
import sys

import pytest
import tensorflow as tf

from convbert_tf.config import ConfigError
from convbert_tf.pretraining import run as trainer
from convbert_tf.pretraining.hparams import resolve_hparams
from convbert_tf.run_guard import LOCK_FILENAME, PREEMPTED_EXIT_CODE, model_dir_lock, remove_interrupted_writes
from tests.pretraining_data import TINY_HPARAMS, write_data_dir

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CPU = tf.distribute.OneDeviceStrategy("/cpu:0")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return write_data_dir(str(tmp_path_factory.mktemp("guard")))


def tiny(data_dir, name, **changes):
    return resolve_hparams(dict(TINY_HPARAMS, **changes), data_dir=data_dir, model_name=name)


def test_lock_refuses_a_second_run_and_takes_over_a_stale_one(tmp_path):
    with model_dir_lock(str(tmp_path)) as path:
        holder = json.load(open(path))
        assert holder["pid"] == os.getpid()
        with pytest.raises(ConfigError, match=f"in use by another run \\(pid {os.getpid()}.*another --model_name"):
            with model_dir_lock(str(tmp_path)):
                pass
        with pytest.raises(ConfigError, match="use another --output_dir, or remove"):
            with model_dir_lock(str(tmp_path), elsewhere="use another --output_dir"):
                pass
    assert not os.path.exists(path)  # released
    stale = dict(holder, pid=2 ** 22 + 12345)  # no such process
    (tmp_path / LOCK_FILENAME).write_text(json.dumps(stale))
    with model_dir_lock(str(tmp_path)):
        assert json.load(open(tmp_path / LOCK_FILENAME))["pid"] == os.getpid()


def test_training_into_a_model_dir_in_use_is_refused(data_dir):
    hp = tiny(data_dir, "busy", num_train_steps=2)
    os.makedirs(hp.model_dir, exist_ok=True)
    with model_dir_lock(hp.model_dir):
        with pytest.raises(ConfigError, match="in use by another run"):
            trainer.train(hp, CPU, out=io.StringIO())
    assert not tf.train.latest_checkpoint(hp.model_dir)


@pytest.mark.slow  # end to end: CI runs it in the slow tier
def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(data_dir):
    trainer.train(tiny(data_dir, "nan", num_train_steps=10, save_checkpoints_steps=4, iterations_per_loop=2),
                  CPU, out=io.StringIO(), stop_at_step=4)
    exploding = tiny(data_dir, "nan", num_train_steps=10, save_checkpoints_steps=4, iterations_per_loop=2,
                     learning_rate=1e30, num_warmup_steps=0)
    with pytest.raises(FloatingPointError, match="at step 6") as err:
        trainer.train(exploding, CPU, out=io.StringIO())
    assert "ckpt-4" in str(err.value)
    assert os.path.basename(tf.train.latest_checkpoint(exploding.model_dir)) == "ckpt-4"
    assert not os.path.exists(os.path.join(exploding.model_dir, LOCK_FILENAME))


@pytest.mark.slow
def test_sigterm_saves_a_checkpoint_and_exits_for_a_rerun(data_dir):
    hparams = dict(TINY_HPARAMS, num_train_steps=100000, iterations_per_loop=5, save_checkpoints_steps=100000)
    proc = subprocess.Popen([sys.executable, "-u", "run_pretraining.py", f"--data_dir={data_dir}",
                             "--model_name=preempted", f"--hparams={json.dumps(hparams)}"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    for line in proc.stdout:  # wait until training runs
        if line.startswith("step "):
            break
    proc.send_signal(signal.SIGTERM)
    rest, err = proc.communicate(timeout=120)
    assert proc.returncode == PREEMPTED_EXIT_CODE, err[-2000:]
    assert "SIGTERM: stopped at step" in rest
    model_dir = os.path.join(data_dir, "models", "preempted")
    step = int(os.path.basename(tf.train.latest_checkpoint(model_dir)).split("-")[1])
    assert 0 < step < 100000 and step % 5 == 0
    assert not os.path.exists(os.path.join(model_dir, LOCK_FILENAME))
    out = io.StringIO()
    trainer.train(tiny(data_dir, "preempted", num_train_steps=100000, iterations_per_loop=5,
                       save_checkpoints_steps=100000), CPU, out=out, stop_at_step=step + 5)
    assert f"resuming from {model_dir}/ckpt-{step} at step {step}" in out.getvalue()


def test_only_the_temporaries_of_interrupted_writes_are_removed(tmp_path):
    kept = ["checkpoint", "ckpt-8.index", "ckpt-8.data-00000-of-00001", "config.json", "hparams.json",
            "saved_model/saved_model.pb", "original_layout/checkpoint", "original_layout/model.ckpt-8.index",
            "train/events.out.tfevents.1.host.2.v2", LOCK_FILENAME]
    temporary = ["ckpt-16_temp/part-00000-of-00001.index", "checkpoint.tmp0a1b2c", "hparams.json.tmp-123",
                 ".saved_model.tmp-0a1b2c3d/saved_model.pb", ".saved_model.old-0a1b2c3d/saved_model.pb",
                 "original_layout/.tmp-0a1b2c3d/model.ckpt-8.index", "original_layout/.checkpoint.tmp-0a1b2c3d"]
    for name in kept + temporary:
        os.makedirs(os.path.dirname(tmp_path / name), exist_ok=True)
        (tmp_path / name).write_text("x")
    removed = remove_interrupted_writes(str(tmp_path))
    assert sorted(os.path.relpath(p, tmp_path) for p in removed) == sorted(
        ["ckpt-16_temp", "checkpoint.tmp0a1b2c", "hparams.json.tmp-123", ".saved_model.tmp-0a1b2c3d",
         ".saved_model.old-0a1b2c3d", "original_layout/.tmp-0a1b2c3d", "original_layout/.checkpoint.tmp-0a1b2c3d"])
    for name in kept:
        assert (tmp_path / name).exists(), name
    for name in temporary:
        assert not (tmp_path / name).exists(), name
    assert remove_interrupted_writes(str(tmp_path)) == []
