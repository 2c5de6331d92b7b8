"""Distribution strategies and mixed precision for the entry points, chosen in one place."""

from __future__ import annotations

import json
import os

import keras
import tensorflow as tf

STRATEGIES = ("auto", "one_device", "mirrored", "multi_worker_mirrored", "tpu")
MIXED_PRECISION = ("auto", "off", "bfloat16", "float16")
# Exit code of an entry point whose multi-worker run lost a worker: restart every worker.
WORKER_LOST_EXIT_CODE = 76
# Default --collective_timeout_s: longer than a first step's tracing and XLA compilation or a
# large checkpoint write by the chief (the other workers wait in the next all-reduce meanwhile).
DEFAULT_COLLECTIVE_TIMEOUT_S = 600.0
# TensorFlow errors by which a collective reports a peer that died, froze or timed out.
_PEER_ERRORS = (tf.errors.UnavailableError, tf.errors.DeadlineExceededError, tf.errors.CancelledError,
                tf.errors.AbortedError)


class WorkerLostError(RuntimeError):
    """A multi-worker run lost contact with a worker; the survivors cannot continue."""


def get_strategy(name: str = "auto", tpu: str | None = None, tpu_zone: str | None = None,
                 gcp_project: str | None = None,
                 collective_timeout_s: float = DEFAULT_COLLECTIVE_TIMEOUT_S) -> tf.distribute.Strategy:
    """Returns the tf.distribute strategy for --strategy.

    auto: TPUStrategy when --tpu is given, MirroredStrategy over every local GPU when there
    are several, the one GPU when there is one, else the CPU.

    Under multi_worker_mirrored, a dead or frozen worker is noticed by the coordination
    service's heartbeat (about 10 s) and every collective then fails on the survivors;
    `collective_timeout_s` (0: none) also fails a collective that waits longer than that for
    a worker that is alive but stuck.
    """
    if name not in STRATEGIES:
        raise ValueError(f"--strategy={name!r} is not one of {STRATEGIES}")
    if collective_timeout_s < 0:
        raise ValueError(f"--collective_timeout_s={collective_timeout_s} is negative; use 0 for no timeout")
    if name == "auto":
        gpus = tf.config.list_logical_devices("GPU")
        name = "tpu" if tpu else ("mirrored" if len(gpus) > 1 else "one_device")
    if name == "tpu":
        if not tpu:
            raise ValueError("--strategy=tpu needs --tpu (a TPU name, 'local', or a grpc:// address)")
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(
            tpu=tpu, zone=tpu_zone, project=gcp_project)
        if tpu != "local":
            tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return tf.distribute.TPUStrategy(resolver)
    if name == "multi_worker_mirrored":
        if "TF_CONFIG" not in os.environ:
            raise ValueError("--strategy=multi_worker_mirrored needs the TF_CONFIG environment variable "
                             "(see the README's multi-host section)")
        try:
            json.loads(os.environ["TF_CONFIG"])
        except json.JSONDecodeError as e:
            raise ValueError(f"TF_CONFIG is not valid JSON: {e}") from None
        options = tf.distribute.experimental.CommunicationOptions(timeout_seconds=collective_timeout_s or None)
        return tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    gpus = tf.config.list_logical_devices("GPU")
    return tf.distribute.OneDeviceStrategy("/gpu:0" if gpus else "/cpu:0")


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """Whether this process writes checkpoints, summaries and exports (worker 0 / the chief)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return True
    task_type, task_id = resolver.task_type, resolver.task_id
    return task_type is None or task_type == "chief" or (task_type == "worker" and task_id == 0
                                                        and "chief" not in resolver.cluster_spec().as_dict())


def is_multi_worker(strategy: tf.distribute.Strategy) -> bool:
    """Whether the strategy spans several processes (a MultiWorkerMirroredStrategy with a TF_CONFIG cluster)."""
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return False
    jobs = strategy.cluster_resolver.cluster_spec().as_dict()
    return sum(len(jobs.get(job, [])) for job in ("chief", "worker")) > 1


def worker_loss_cause(error: Exception) -> str | None:
    """The reason in a collective's error if it reports a lost peer (dead, frozen, timed out), else None."""
    if not isinstance(error, tf.errors.OpError):
        return None
    text = str(error.message)
    if not isinstance(error, _PEER_ERRORS) and "Collective ops is aborted" not in text:
        return None
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    boilerplate = ("Graph execution error", "Detected at node", "File ", "[[", "The error could be from",
                   "Additional GRPC error", "The tasks have crashed")
    start = next((i for i, line in enumerate(lines) if "aborted by:" in line), None)
    if start is not None:
        lines = [lines[start].rsplit("aborted by:", 1)[1].strip()] + lines[start + 1:]
    cause = []
    for line in lines:
        if line.startswith(boilerplate):
            if cause:
                break
            continue
        cause.append(line)
    return (" ".join(cause) or type(error).__name__)[:300].rstrip(".")


def worker_lost_error(error: Exception, strategy: tf.distribute.Strategy, resume_from: str) -> WorkerLostError | None:
    """A WorkerLostError saying what happened and how to resume, if `error` is a lost worker of a
    multi-worker run; None otherwise (the caller re-raises `error`)."""
    cause = worker_loss_cause(error) if is_multi_worker(strategy) else None
    if cause is None:
        return None
    return WorkerLostError(
        f"MultiWorkerMirroredStrategy lost a worker (dead, unreachable, or stuck longer than "
        f"--collective_timeout_s): {cause}. The run cannot continue without it; {resume_from}. "
        f"Restart all workers with the same command to resume.")


def set_mixed_precision(mode: str, strategy: tf.distribute.Strategy) -> str:
    """Sets the Keras global dtype policy for --mixed_precision and returns its name.

    auto: bfloat16 on TPU, float16 (with loss scaling) on GPU, off on CPU.
    """
    if mode not in MIXED_PRECISION:
        raise ValueError(f"--mixed_precision={mode!r} is not one of {MIXED_PRECISION}")
    if mode == "auto":
        if isinstance(strategy, tf.distribute.TPUStrategy):
            mode = "bfloat16"
        elif tf.config.list_logical_devices("GPU"):
            mode = "float16"
        else:
            mode = "off"
    policy = {"off": "float32", "bfloat16": "mixed_bfloat16", "float16": "mixed_float16"}[mode]
    keras.mixed_precision.set_global_policy(policy)
    return policy
