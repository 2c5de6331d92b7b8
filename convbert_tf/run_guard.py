"""Guards of a long run: a writable model_dir with room for checkpoints, one run per model_dir
(a lock file), no resuming another configuration's run, and SIGTERM as "save and stop".

Remote model_dirs (gs://..., ram://...) go through tf.io.gfile: their lock, config check and
clean-up work as on a local disk, except that taking the lock is not atomic there (no exclusive
create) and the free space is not measured. Imported by the training runs and the ablation.
"""

from __future__ import annotations

import contextlib
import fnmatch
import json
import os
import shutil
import signal
import socket
import time
from typing import Iterable

from convbert_tf import io
from convbert_tf.config import ConfigError, ConvBertConfig

LOCK_FILENAME = ".run.lock"
CONFIG_FILENAME = "config.json"  # as checkpoints.CONFIG_FILENAME, without importing TensorFlow here
# Exit code of an entry point that stopped on SIGTERM after saving a checkpoint: "rerun me".
PREEMPTED_EXIT_CODE = 75
# What a killed run can leave in its model_dir: every write goes to one of these temporary
# names first and is renamed into place when complete, so none of them is ever read.
# io.TEMPORARY_GLOB covers every write made through convbert_tf.io (config.json, the exports'
# directories, the original-layout checkpoint's state file); TensorFlow names its own.
TF_CHECKPOINT_PATTERNS = (
    "ckpt-*_temp",  # tf.train.Checkpoint's shards before their merge
    "checkpoint.tmp*",  # CheckpointManager's `checkpoint` state file before its rename
)
# Temporary names that earlier versions of this package used (hparams.json and results, the old
# export set aside, the original layout's staging folder): a model_dir that such a run left when
# killed is still cleaned. Nothing in the package writes these names now.
OTHER_TEMPORARY_PATTERNS = ("*.json.tmp-*", ".saved_model.old-*", "original_layout/.tmp-*")
INTERRUPTED_WRITE_PATTERNS = (io.TEMPORARY_GLOB, f"original_layout/{io.TEMPORARY_GLOB}") + TF_CHECKPOINT_PATTERNS \
    + OTHER_TEMPORARY_PATTERNS


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _gfile():
    import tensorflow as tf  # only for remote model_dirs

    return tf.io.gfile


def _exists(path: str) -> bool:
    return _gfile().exists(path) if io.is_remote(path) else os.path.exists(path)


def _read_text(path: str) -> str:
    with (_gfile().GFile(path) if io.is_remote(path) else open(path)) as f:
        return f.read()


def _remove(path: str) -> None:
    """Removes a file or a directory tree; one already gone is no error."""
    if io.is_remote(path):
        gfile = _gfile()
        with contextlib.suppress(Exception):
            gfile.rmtree(path) if gfile.isdir(path) else gfile.remove(path)
    elif os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(OSError):
            os.remove(path)


def _list_matching(folder: str, name_pattern: str) -> list:
    """The names in `folder` (local or remote) that match `name_pattern`; none when it is not a directory."""
    if io.is_remote(folder):
        gfile = _gfile()
        names = [n.rstrip("/") for n in gfile.listdir(folder)] if gfile.isdir(folder) else []
    else:
        names = os.listdir(folder) if os.path.isdir(folder) else []
    return sorted(fnmatch.filter(names, name_pattern))


def _create_exclusively(path: str, text: str) -> bool:
    """Creates `path` holding `text` unless it exists (False then). Exclusive on a local disk;
    on a remote file system a check, then an atomic write."""
    if io.is_remote(path):
        if _exists(path):
            return False
        io.atomic_write_text(path, text)
        return True
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as f:
        f.write(text)
    return True


def approximate_num_parameters(config: ConvBertConfig) -> int:
    """An encoder's parameter count from its config, within about 10% (above) for the released sizes.

    Embedding tables and projection, then per layer about 4.5 D^2 for the mixed attention and its
    output, 2 D I / G for the feed-forward, and the convolution kernels.
    """
    E, D, I, L = (config.resolved_embedding_size, config.hidden_size, config.intermediate_size,
                  config.num_hidden_layers)
    embeddings = (config.vocab_size + config.max_position_embeddings + config.type_vocab_size) * E
    embeddings += E * D if E != D else 0
    layer = 4 * D * D + D * D // 2 + 2 * D * I // config.linear_groups + 2 * D * config.conv_kernel_size
    return embeddings + L * layer


def checkpoint_bytes(configs: Iterable[ConvBertConfig]) -> int:
    """About the size of one training checkpoint of these networks: float32 weights and 2 Adam slots."""
    return sum(approximate_num_parameters(c) for c in configs) * 3 * 4


def _format_bytes(count: int) -> str:
    return f"{count / 2 ** 30:.2f} GiB" if count >= 2 ** 30 else f"{count / 2 ** 20:.1f} MiB"


def check_model_dir_writable(model_dir: str, needed_bytes: int) -> None:
    """Before any long work: model_dir can be created and written, and has `needed_bytes` free.

    Writes and removes a probe file (permission bits alone miss read-only mounts, and os.access
    is wrong on some network filesystems), then compares shutil.disk_usage's free bytes.

    A remote path (gs://...) is only created: it has no local free space to measure.

    Raises:
        ConfigError: naming the directory and, for space, the free and needed bytes.
    """
    if io.is_remote(model_dir):
        io.makedirs(model_dir)
        return
    probe = os.path.join(model_dir, f".write-probe-{os.getpid()}")
    try:
        os.makedirs(model_dir, exist_ok=True)
        with open(probe, "wb") as f:
            f.write(b"\0" * 4096)
            f.flush()
            os.fsync(f.fileno())
        os.remove(probe)
    except OSError as e:
        with contextlib.suppress(OSError):
            os.remove(probe)
        raise ConfigError(
            f"model_dir {model_dir} cannot be written ({e.strerror or e}); fix its permissions or mount, or "
            "choose another directory (--model_name, --data_dir or \"model_dir\" in --hparams)") from None
    free = shutil.disk_usage(model_dir).free
    if free < needed_bytes:
        raise ConfigError(
            f"model_dir {model_dir} has {_format_bytes(free)} free, but the run needs about "
            f"{_format_bytes(needed_bytes)} (two checkpoints with their Adam slots); free some space or "
            "choose a directory on another disk")


def check_saved_config(directory: str, config: ConvBertConfig, what_to_do: str) -> None:
    """Refuses to resume in `directory` when its config.json is another configuration's.

    conv_mask_padding and conv_implementation may differ (they do not change the weights).

    Raises:
        ConfigError: naming both values of every field that differs.
    """
    saved_path = os.path.join(directory, CONFIG_FILENAME)
    if not _exists(saved_path):
        return
    saved = ConvBertConfig.from_json_file(saved_path)
    runtime = ("conv_mask_padding", "conv_implementation")
    differ = {k: (v, getattr(config, k)) for k, v in saved.to_dict().items()
              if k not in runtime and getattr(config, k) != v}
    if differ:
        raise ConfigError(
            f"{directory} holds a run of another configuration ({saved_path}): "
            + ", ".join(f"{k} {a!r} there vs {b!r} now" for k, (a, b) in sorted(differ.items()))
            + f"; {what_to_do}")


@contextlib.contextmanager
def model_dir_lock(model_dir: str, lock_name: str = LOCK_FILENAME, elsewhere: str = "use another --model_name"):
    """Holds `<model_dir>/<lock_name>` for the run; a second run on the same model_dir is refused,
    its error suggesting `elsewhere` (how the user picks another directory) among the remedies.

    A lock left by a process that no longer exists on this host is taken over. The lock file
    says which process holds it, so a user can remove it by hand if that host is gone.
    """
    path = os.path.join(model_dir, lock_name)
    me = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.strftime("%Y-%m-%d %H:%M:%S")}
    for _ in range(2):
        if _create_exclusively(path, json.dumps(me)):
            break
        try:
            holder = json.loads(_read_text(path))
        except Exception:  # unreadable or half-written (gfile raises its own error types)
            holder = {}
        if holder.get("host") == me["host"] and isinstance(holder.get("pid"), int) and not _pid_alive(holder["pid"]):
            _remove(path)  # stale: its process is gone
            continue
        raise ConfigError(
            f"model_dir {model_dir} is in use by another run (pid {holder.get('pid')} on "
            f"{holder.get('host')}, since {holder.get('since')}); wait for it to finish, {elsewhere}, "
            f"or remove {path} if that run is gone") from None
    try:
        yield path
    finally:
        _remove(path)


# The same in a fine-tuning trial's directory (exports go to saved_model/<task>).
TRIAL_INTERRUPTED_WRITE_PATTERNS = (io.TEMPORARY_GLOB, f"saved_model/{io.TEMPORARY_GLOB}") + TF_CHECKPOINT_PATTERNS \
    + ("saved_model/.*.old-*",)  # an earlier version's export set aside


def remove_interrupted_writes(model_dir: str, patterns=INTERRUPTED_WRITE_PATTERNS) -> list:
    """Deletes the temporary files and directories that a killed run left in model_dir.

    Call it only when no other run is writing there (a pretraining run holds model_dir's
    lock). Returns the paths removed.
    """
    removed = []
    for pattern in patterns:
        folder, name_pattern = os.path.split(os.path.join(model_dir, pattern))
        for name in _list_matching(folder, name_pattern):
            path = os.path.join(folder, name)
            _remove(path)
            removed.append(path)
    return removed


class PreemptionWatcher:
    """Turns SIGTERM into a flag that the training loop checks between compiled calls.

    Spot VMs and cloud TPUs send SIGTERM some time before they take a machine; the loop then
    saves a checkpoint and returns, and the entry point exits with PREEMPTED_EXIT_CODE so that
    a scheduler reruns it (the rerun resumes from that checkpoint).
    """

    def __init__(self):
        self.requested = False
        self._previous = None

    def _handle(self, signum, frame):
        del signum, frame
        self.requested = True

    def __enter__(self):
        try:
            self._previous = signal.signal(signal.SIGTERM, self._handle)
        except ValueError:  # not the main thread: no handler, never preempted
            self._previous = None
        return self

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)
        return False
