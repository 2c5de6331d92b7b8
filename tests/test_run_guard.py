"""Guards of a run: one run per model_dir, SIGTERM, non-finite losses, clean-up of interrupted
writes (local and remote model_dirs), an unwritable or full model_dir, and fine-tuning's
run-directory guards."""

import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from convbert_tf.config import ConfigError, ConvBertConfig
from convbert_tf.encoder import ConvBertEncoder
from convbert_tf.finetuning.hparams import resolve_finetuning_hparams
from convbert_tf.finetuning.run import run_finetuning
from convbert_tf.pretraining import run as trainer
from convbert_tf.pretraining.hparams import resolve_hparams
from convbert_tf.run_guard import (LOCK_FILENAME, PREEMPTED_EXIT_CODE, approximate_num_parameters, checkpoint_bytes,
                                   check_model_dir_writable, check_saved_config, model_dir_lock,
                                   remove_interrupted_writes)
from finetuning_data import HPARAMS as FINETUNING_HPARAMS
from finetuning_data import write_pretrained, write_sst
from pretraining_data import TINY_HPARAMS, write_data_dir
from repo_paths import ROOT

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
                 "original_layout/.tmp-0a1b2c3d/model.ckpt-8.index", "original_layout/.checkpoint.tmp-0a1b2c3d",
                 ".config.json.tmp-123-0a1b2c3d", "original_layout/.model.ckpt-8.index.tmp-123-0a1b2c3d"]
    for name in kept + temporary:
        os.makedirs(os.path.dirname(tmp_path / name), exist_ok=True)
        (tmp_path / name).write_text("x")
    removed = remove_interrupted_writes(str(tmp_path))
    assert sorted(os.path.relpath(p, tmp_path) for p in removed) == sorted(
        ["ckpt-16_temp", "checkpoint.tmp0a1b2c", "hparams.json.tmp-123", ".saved_model.tmp-0a1b2c3d",
         ".saved_model.old-0a1b2c3d", "original_layout/.tmp-0a1b2c3d", "original_layout/.checkpoint.tmp-0a1b2c3d",
         ".config.json.tmp-123-0a1b2c3d", "original_layout/.model.ckpt-8.index.tmp-123-0a1b2c3d"])
    for name in kept:
        assert (tmp_path / name).exists(), name
    for name in temporary:
        assert not (tmp_path / name).exists(), name
    assert remove_interrupted_writes(str(tmp_path)) == []


def test_a_remote_model_dir_gets_its_lock_config_check_and_clean_up_through_gfile():
    model_dir = "ram://convbert-run-guard/models/tiny"
    check_model_dir_writable(model_dir, needed_bytes=1 << 40)  # no local free space to measure
    assert tf.io.gfile.isdir(model_dir)
    with model_dir_lock(model_dir) as path:
        with tf.io.gfile.GFile(path) as f:
            assert json.load(f)["pid"] == os.getpid()
        with pytest.raises(ConfigError, match="in use by another run"):
            with model_dir_lock(model_dir):
                pass
    assert not tf.io.gfile.exists(path)
    config = ConvBertConfig.from_preset("small")
    config.to_json_file(f"{model_dir}/config.json")
    check_saved_config(model_dir, config, "use another --model_name")
    with pytest.raises(ConfigError, match="hidden_size 256 there vs 128 now"):
        check_saved_config(model_dir, config.replace(hidden_size=128, intermediate_size=512), "do something")
    # Files only: the ram:// file system lists no directories that only exist as prefixes (gs:// does).
    for name in (".hparams.json.tmp-1-0a1b2c3d", "checkpoint.tmp0a1b2c"):
        with tf.io.gfile.GFile(f"{model_dir}/{name}", "w") as f:
            f.write("x")
    removed = remove_interrupted_writes(model_dir)
    assert sorted(removed) == [f"{model_dir}/.hparams.json.tmp-1-0a1b2c3d", f"{model_dir}/checkpoint.tmp0a1b2c"]
    assert sorted(tf.io.gfile.listdir(model_dir)) == ["config.json"]
    assert not os.path.exists("ram:")  # nothing written to a local folder named after the scheme


# ----- setup: unwritable or full model_dir ----------------------------------------------------------
@pytest.fixture(scope="module")
def setup_data_dir(tmp_path_factory):
    return write_data_dir(str(tmp_path_factory.mktemp("setup")), num_files=1, records_per_file=16)


def short_run(data_dir, name, **changes):
    values = dict(TINY_HPARAMS, num_train_steps=2, iterations_per_loop=1, save_checkpoints_steps=2, **changes)
    return resolve_hparams(values, data_dir=data_dir, model_name=name)


def test_unwritable_model_dir_is_refused_before_anything_is_built(setup_data_dir, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    hp = short_run(setup_data_dir, "x", model_dir=str(blocker / "run"))
    with pytest.raises(ConfigError, match=f"model_dir {re.escape(str(blocker / 'run'))} cannot be written"):
        trainer.train(hp, CPU, out=io.StringIO())
    if os.geteuid() != 0:  # root writes through permission bits
        read_only = tmp_path / "read_only"
        read_only.mkdir()
        read_only.chmod(0o500)
        try:
            with pytest.raises(ConfigError, match="cannot be written .*Permission denied"):
                trainer.train(short_run(setup_data_dir, "x", model_dir=str(read_only)), CPU, out=io.StringIO())
        finally:
            read_only.chmod(0o700)


def test_full_disk_is_refused_naming_free_and_needed_bytes(setup_data_dir, monkeypatch):
    hp = short_run(setup_data_dir, "full")
    needed = 2 * checkpoint_bytes([hp.model_config(), hp.generator_config()])
    usage = shutil.disk_usage(setup_data_dir)
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage._replace(free=needed // 2))
    with pytest.raises(ConfigError) as error:
        trainer.train(hp, CPU, out=io.StringIO())
    assert str(error.value).startswith(f"model_dir {hp.model_dir} has {needed / 2 / 2 ** 20:.1f} MiB free, but the "
                                       f"run needs about {needed / 2 ** 20:.1f} MiB")
    assert os.listdir(hp.model_dir) == []  # refused before any checkpoint, config or lock

    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage._replace(free=needed + 1))
    trainer.check_model_dir(hp, hp.model_config())  # just enough


def test_parameter_estimate_is_close_to_the_real_count():
    config = ConvBertConfig.from_preset("small").replace(vocab_size=2000)  # mostly layers, quick to build
    encoder = ConvBertEncoder(config)
    encoder({k: np.zeros((1, 8), np.int32) for k in ("input_ids", "input_mask", "segment_ids")})
    assert 1.0 <= approximate_num_parameters(config) / encoder.count_params() < 1.2


# ----- fine-tuning's guards ---------------------------------------------------------------------------
@pytest.fixture
def finetuning_dir(tmp_path):
    write_pretrained(str(tmp_path))
    write_sst(str(tmp_path), n_train=32, n_dev=8)
    return tmp_path


def finetuning_hparams(data_dir, **changes):
    return resolve_finetuning_hparams(dict(FINETUNING_HPARAMS, task_names=["sst"], **changes),
                                      data_dir=str(data_dir), model_name="tiny")


def test_finetuning_refuses_a_busy_full_or_mismatched_run_dir(finetuning_dir, monkeypatch):
    hp = finetuning_hparams(finetuning_dir)
    run_dir = os.path.join(hp.model_dir, "finetuning_models")
    os.makedirs(run_dir)
    with model_dir_lock(run_dir, ".sst.run.lock"):
        with pytest.raises(ConfigError, match=f"model_dir {re.escape(run_dir)} is in use by another run"):
            run_finetuning(hp, CPU, out=io.StringIO())

    trial_dir = os.path.join(run_dir, "sst_model_1")
    os.makedirs(trial_dir)
    hp.model_config().replace(hidden_size=64, intermediate_size=128).to_json_file(
        os.path.join(trial_dir, "config.json"))
    with pytest.raises(ConfigError, match=f"{re.escape(trial_dir)} holds a run of another configuration .*"
                                          "hidden_size 64 there vs 32 now"):
        run_finetuning(hp, CPU, out=io.StringIO())

    usage = shutil.disk_usage(str(finetuning_dir))
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage._replace(free=1000))
    with pytest.raises(ConfigError, match=f"model_dir {re.escape(run_dir)} has 0.0 MiB free"):
        run_finetuning(hp, CPU, out=io.StringIO())
