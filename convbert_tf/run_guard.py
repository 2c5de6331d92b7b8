"""Guards of a long run: one run per model_dir (a lock file), and SIGTERM as "save and stop"."""

from __future__ import annotations

import contextlib
import fnmatch
import json
import os
import shutil
import signal
import socket
import time

from convbert_tf.config import ConfigError

LOCK_FILENAME = ".run.lock"
# Exit code of an entry point that stopped on SIGTERM after saving a checkpoint: "rerun me".
PREEMPTED_EXIT_CODE = 75
# What a killed run can leave in its model_dir: every write goes to one of these temporary
# names first and is renamed into place when complete, so none of them is ever read.
INTERRUPTED_WRITE_PATTERNS = (
    "ckpt-*_temp",  # tf.train.Checkpoint's shards before their merge
    "checkpoint.tmp*",  # CheckpointManager's `checkpoint` state file before its rename
    "*.json.tmp-*",  # config.json, hparams.json
    ".saved_model.tmp-*", ".saved_model.old-*",  # convbert_tf.export.write_saved_model
    "original_layout/.tmp-*", "original_layout/.checkpoint.tmp-*",  # checkpoints.save_original_checkpoint
)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def model_dir_lock(model_dir: str):
    """Holds `<model_dir>/.run.lock` for the run; a second run on the same model_dir is refused.

    A lock left by a process that no longer exists on this host is taken over. The lock file
    says which process holds it, so a user can remove it by hand if that host is gone.
    """
    path = os.path.join(model_dir, LOCK_FILENAME)
    me = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.strftime("%Y-%m-%d %H:%M:%S")}
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                with open(path) as f:
                    holder = json.load(f)
            except (OSError, ValueError):
                holder = {}
            if holder.get("host") == me["host"] and isinstance(holder.get("pid"), int) \
                    and not _pid_alive(holder["pid"]):
                os.remove(path)  # stale: its process is gone
                continue
            raise ConfigError(
                f"model_dir {model_dir} is in use by another run (pid {holder.get('pid')} on "
                f"{holder.get('host')}, since {holder.get('since')}); wait for it to finish, use another "
                f"--model_name, or remove {path} if that run is gone") from None
        with os.fdopen(fd, "w") as f:
            json.dump(me, f)
        break
    try:
        yield path
    finally:
        with contextlib.suppress(OSError):
            os.remove(path)


# The same in a fine-tuning trial's directory (exports go to saved_model/<task>).
TRIAL_INTERRUPTED_WRITE_PATTERNS = ("ckpt-*_temp", "checkpoint.tmp*", "saved_model/.*.tmp-*",
                                    "saved_model/.*.old-*")


def remove_interrupted_writes(model_dir: str, patterns=INTERRUPTED_WRITE_PATTERNS) -> list:
    """Deletes the temporary files and directories that a killed run left in model_dir.

    Call it only when no other run is writing there (a pretraining run holds model_dir's
    lock). Returns the paths removed.
    """
    removed = []
    for pattern in patterns:
        folder, name_pattern = os.path.split(os.path.join(model_dir, pattern))
        if not os.path.isdir(folder):
            continue
        for name in sorted(fnmatch.filter(os.listdir(folder), name_pattern)):
            path = os.path.join(folder, name)
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    os.remove(path)
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
