"""Distribution strategies and mixed precision for the entry points, chosen in one place."""

from __future__ import annotations

import json
import os

import keras
import tensorflow as tf

STRATEGIES = ("auto", "one_device", "mirrored", "multi_worker_mirrored", "tpu")
MIXED_PRECISION = ("auto", "off", "bfloat16", "float16")


def get_strategy(name: str = "auto", tpu: str | None = None, tpu_zone: str | None = None,
                 gcp_project: str | None = None) -> tf.distribute.Strategy:
    """Returns the tf.distribute strategy for --strategy.

    auto: TPUStrategy when --tpu is given, MirroredStrategy over every local GPU when there
    are several, the one GPU when there is one, else the CPU.
    """
    if name not in STRATEGIES:
        raise ValueError(f"--strategy={name!r} is not one of {STRATEGIES}")
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
        return tf.distribute.MultiWorkerMirroredStrategy()
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
