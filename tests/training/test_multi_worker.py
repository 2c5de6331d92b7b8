"""MultiWorkerMirroredStrategy: several run_pretraining.py / run_finetuning.py processes on 127.0.0.1,
and worker loss."""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest
import tensorflow as tf

from convbert_tf.training.distribute import WORKER_LOST_EXIT_CODE, get_strategy, worker_loss_cause, worker_lost_error
from pretraining_data import TINY_HPARAMS, write_data_dir

from repo_paths import ROOT
# How long the survivors may take to fail after a worker is lost (the heartbeat needs about 10 s).
LOSS_BOUND_S = 120


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    """`<script> --strategy=multi_worker_mirrored` once per worker of one TF_CONFIG cluster."""

    def __init__(self, tmp_path, data_dir, num_workers, hparams, model_name, script="run_pretraining.py"):
        self.tmp_path, self.data_dir, self.hparams, self.model_name = tmp_path, data_dir, hparams, model_name
        self.script = script
        self.cluster = {"worker": [f"127.0.0.1:{_free_port()}" for _ in range(num_workers)]}
        self.model_dir = os.path.join(data_dir, "models", model_name)
        self.launches = 0

    def start(self):
        """Starts every worker with the same command line; returns (processes, log file stems)."""
        self.launches += 1
        procs, stems = [], []
        for index in range(len(self.cluster["worker"])):
            stem = os.path.join(self.tmp_path, f"launch{self.launches}-worker{index}")
            env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2",
                       TF_CONFIG=json.dumps({"cluster": self.cluster, "task": {"type": "worker", "index": index}}))
            with open(stem + ".out", "w") as out, open(stem + ".err", "w") as err:
                procs.append(subprocess.Popen(
                    [sys.executable, self.script, f"--data_dir={self.data_dir}",
                     f"--model_name={self.model_name}", "--strategy=multi_worker_mirrored",
                     f"--hparams={json.dumps(self.hparams)}"],
                    cwd=ROOT, env=env, stdout=out, stderr=err))
            stems.append(stem)
        return procs, stems


def _read(path):
    with open(path) as f:
        return f.read()


def _wait_all(procs, timeout):
    """Exit times (time.monotonic) of the processes; kills them all if one is still running at `timeout`."""
    deadline, exited = time.monotonic() + timeout, {}
    while len(exited) < len(procs) and time.monotonic() < deadline:
        for i, p in enumerate(procs):
            if i not in exited and p.poll() is not None:
                exited[i] = time.monotonic()
        time.sleep(0.1)
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert len(exited) == len(procs), f"workers {sorted(set(range(len(procs))) - set(exited))} still running " \
                                      f"after {timeout} s"
    return [exited[i] for i in range(len(procs))]


def _wait_for_checkpoint(model_dir, procs, timeout=180):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if tf.train.latest_checkpoint(model_dir):
            return
        assert all(p.poll() is None for p in procs), "a worker exited before the first checkpoint"
        time.sleep(0.1)
    raise AssertionError(f"no checkpoint in {model_dir} after {timeout} s")


@pytest.fixture()
def data_dir(tmp_path):
    return write_data_dir(str(tmp_path / "data"))


# ----- fast: the error that replaces TensorFlow's ------------------------------------------------
def test_worker_loss_cause_reads_the_collective_error():
    heartbeat = tf.errors.UnavailableError(None, None, (
        "Graph execution error:\n\nDetected at node while/CollectiveReduceV2 defined at (most recent call last):\n"
        "  File \"run_pretraining.py\", line 67, in <module>\n\n"
        "Collective ops is aborted by: Error reported from /job:worker/task:1: The following tasks are "
        "unhealthy (stopped sending heartbeats):\n/job:worker/replica:0/task:1\nThe tasks have crashed.\n"
        "\t [[{{node while/CollectiveReduceV2}}]]"))
    assert worker_loss_cause(heartbeat) == ("Error reported from /job:worker/task:1: The following tasks are "
                                            "unhealthy (stopped sending heartbeats): /job:worker/replica:0/task:1")
    frozen_leader = tf.errors.DeadlineExceededError(None, None, (
        "Graph execution error:\n\nCollective ops is aborted by: Collective ops is aborted by: Deadline Exceeded\n"
        "RPC: /tensorflow.CoordinationService/Heartbeat\nThe error could be from a previous operation."))
    assert worker_loss_cause(frozen_leader) == "Deadline Exceeded RPC: /tensorflow.CoordinationService/Heartbeat"
    timed_out = tf.errors.DeadlineExceededError(None, None, "Collective has timed out during execution.")
    assert worker_loss_cause(timed_out) == "Collective has timed out during execution"
    # Errors that do not come from a lost peer are left alone.
    assert worker_loss_cause(tf.errors.InvalidArgumentError(None, None, "shapes differ")) is None
    assert worker_loss_cause(ValueError("x")) is None
    # Outside a multi-worker run a collective error is not a lost worker.
    assert worker_lost_error(heartbeat, tf.distribute.OneDeviceStrategy("/cpu:0"), "resume") is None


def test_negative_collective_timeout_is_refused():
    with pytest.raises(ValueError, match="collective_timeout_s=-1"):
        get_strategy("multi_worker_mirrored", collective_timeout_s=-1)


# ----- slow: real clusters on 127.0.0.1 ----------------------------------------------------------
@pytest.mark.slow
def test_two_workers_train_and_only_the_chief_checkpoints(data_dir, tmp_path):
    hp = dict(TINY_HPARAMS, num_train_steps=4, iterations_per_loop=2)
    cluster = Cluster(tmp_path, data_dir, 2, hp, "two")
    procs, stems = cluster.start()
    _wait_all(procs, timeout=300)
    for p, stem in zip(procs, stems):
        assert p.returncode == 0, _read(stem + ".err")[-3000:]
    assert os.path.basename(tf.train.latest_checkpoint(cluster.model_dir)) == "ckpt-4"
    assert "2 replica(s)" in _read(stems[0] + ".out")


@pytest.mark.slow  # end to end: CI runs it in the slow tier
def test_two_workers_fine_tune_and_only_the_chief_writes_the_trials(tmp_path):
    from finetuning_data import HPARAMS, write_pretrained, write_sst
    data_dir = str(tmp_path / "finetune")
    write_pretrained(data_dir)
    write_sst(data_dir, n_train=64, n_dev=32)
    hp = dict(HPARAMS, task_names=["sst"], num_trials=2, num_train_epochs=1.0, write_test_outputs=False)
    cluster = Cluster(tmp_path, data_dir, 2, hp, "tiny", script="run_finetuning.py")
    procs, stems = cluster.start()
    _wait_all(procs, timeout=300)
    for p, stem in zip(procs, stems):
        assert p.returncode == 0, _read(stem + ".err")[-3000:]
    runs = os.path.join(cluster.model_dir, "finetuning_models")
    exports = [[line for line in _read(stem + ".out").splitlines() if line.startswith("exported ")] for stem in stems]
    # Both workers export (saving may need every worker); only the chief into model_dir.
    assert len(exports[0]) == len(exports[1]) == 2, exports
    assert all(line.startswith(f"exported {runs}") for line in exports[0]), exports
    assert not any(runs in line for line in exports[1]), exports
    # Each worker scored every dev row: the same accuracy on both, per trial.
    scores = [[line for line in _read(stem + ".out").splitlines() if line.startswith("sst dev: accuracy")]
              for stem in stems]
    assert len(scores[0]) == 2 and scores[0] == scores[1], scores
    assert tf.train.latest_checkpoint(os.path.join(runs, "sst_model_2"))
    for trial in (1, 2):
        with open(os.path.join(runs, f"sst_model_{trial}", "trial_results.json")) as f:
            assert "accuracy" in json.load(f)["results"]["sst"]
    assert "trial 2" in _read(os.path.join(cluster.model_dir, "results", "sst_results.txt"))


@pytest.mark.slow
def test_killed_worker_stops_the_others_and_a_restart_of_all_resumes(data_dir, tmp_path):
    """Three workers; SIGKILL one mid-run: the two others fail fast with exit 76 and a clear
    message, and the same command on every worker resumes from the last checkpoint and
    finishes, with only the chief writing checkpoints and logs."""
    steps = 100  # seconds of steps after the first checkpoint, so that the kill lands mid-run
    hp = dict(TINY_HPARAMS, train_batch_size=12, num_train_steps=steps, iterations_per_loop=5,
              save_checkpoints_steps=10)
    cluster = Cluster(tmp_path, data_dir, 3, hp, "killed")
    procs, stems = cluster.start()
    _wait_for_checkpoint(cluster.model_dir, procs)
    procs[1].send_signal(signal.SIGKILL)
    killed_at = time.monotonic()
    exited_at = _wait_all(procs, timeout=LOSS_BOUND_S + 60)
    assert procs[1].returncode == -signal.SIGKILL
    last = tf.train.latest_checkpoint(cluster.model_dir)
    step = int(last.rsplit("-", 1)[1])
    assert step < steps, "the kill landed after the end of the run; raise num_train_steps"
    for index in (0, 2):
        err = _read(stems[index] + ".err")
        assert procs[index].returncode == WORKER_LOST_EXIT_CODE, err[-3000:]
        assert exited_at[index] - killed_at < LOSS_BOUND_S
        assert "MultiWorkerMirroredStrategy lost a worker" in err
        assert f"the last checkpoint is {last}" in err
        assert "Restart all workers with the same command to resume" in err
        assert "Traceback" not in err

    procs, stems = cluster.start()
    _wait_all(procs, timeout=300)
    for p, stem in zip(procs, stems):
        assert p.returncode == 0, _read(stem + ".err")[-3000:]
    chief_log = _read(stems[0] + ".out")
    assert f"resuming from {last} at step {step}" in chief_log
    assert "3 replica(s)" in chief_log and f"step {steps}/{steps}" in chief_log
    assert all(_read(stem + ".out") == "" for stem in stems[1:])  # only the chief logs
    assert os.path.basename(tf.train.latest_checkpoint(cluster.model_dir)) == f"ckpt-{steps}"


@pytest.mark.slow
def test_frozen_chief_stops_the_other_workers(data_dir, tmp_path):
    """Two workers; SIGSTOP the chief (the coordination service's host too): its heartbeats
    stop, and the other worker fails within the bound instead of waiting for it forever."""
    hp = dict(TINY_HPARAMS, num_train_steps=600, iterations_per_loop=5, save_checkpoints_steps=10)
    cluster = Cluster(tmp_path, data_dir, 2, hp, "frozen")
    procs, stems = cluster.start()
    try:
        _wait_for_checkpoint(cluster.model_dir, procs)
        procs[0].send_signal(signal.SIGSTOP)
        stopped_at = time.monotonic()
        exited_at = _wait_all(procs[1:], timeout=LOSS_BOUND_S + 60)
    finally:
        procs[0].kill()
        procs[0].wait()
    for p, stem, at in zip(procs[1:], stems[1:], exited_at):
        err = _read(stem + ".err")
        assert p.returncode == WORKER_LOST_EXIT_CODE, err[-3000:]
        assert at - stopped_at < LOSS_BOUND_S
        assert "MultiWorkerMirroredStrategy lost a worker" in err and "Traceback" not in err
