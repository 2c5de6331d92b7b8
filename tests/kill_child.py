"""Runs an entry script with a SIGKILL planted inside one write, for tests/test_kill_resume.py.

  python tests/kill_child.py <kill point> <script.py> [script flags...]

The patches live only in this process; the library has no fault-injection hooks. Each one
lets the real write put files on disk, tears one of them (as a kill in the middle of writing
would leave it), then SIGKILLs the process before the write's next step:

  checkpoint:<N>   the save of ckpt-<N> (tf.train.Checkpoint's merge of its shards): the files
                   are under their final names, the .index cut to half, the `checkpoint`
                   state file not yet updated.
  saved_model      tf.saved_model.save: the SavedModel is in its temporary directory, its
                   variables index cut to half, not yet renamed into place.
  original_layout  the original-layout checkpoint (tf.raw_ops.SaveV2): the files are in their
                   temporary directory, the data file cut to half, not yet renamed into place.
"""

import glob
import os
import runpy
import signal
import sys

import tensorflow as tf
from tensorflow.python.ops import gen_io_ops


def tear(path: str) -> None:
    """Cuts a file to half its size, as a write interrupted half-way leaves it."""
    size = os.path.getsize(path)
    with open(path, "r+b") as f:
        f.truncate(size // 2)


def die() -> None:
    sys.stdout.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def plant(kill_point: str) -> None:
    if kill_point.startswith("checkpoint:"):
        target = f"ckpt-{int(kill_point.split(':')[1])}"
        merge = gen_io_ops.merge_v2_checkpoints

        def merge_then_die(checkpoint_prefixes, destination_prefix, *args, **kwargs):
            result = merge(checkpoint_prefixes, destination_prefix, *args, **kwargs)
            prefix = destination_prefix.numpy().decode()
            if os.path.basename(prefix) == target:
                tear(prefix + ".index")
                print(f"kill_child: SIGKILL inside the save of {prefix}", flush=True)
                die()
            return result

        gen_io_ops.merge_v2_checkpoints = merge_then_die
    elif kill_point == "saved_model":
        save = tf.saved_model.save

        def save_then_die(obj, export_dir, *args, **kwargs):
            save(obj, export_dir, *args, **kwargs)
            tear(os.path.join(export_dir, "variables", "variables.index"))
            print(f"kill_child: SIGKILL inside the SavedModel write to {export_dir}", flush=True)
            die()

        tf.saved_model.save = save_then_die
    elif kill_point == "original_layout":
        save_v2 = tf.raw_ops.SaveV2

        def save_v2_then_die(*args, prefix, **kwargs):
            save_v2(*args, prefix=prefix, **kwargs)
            path = prefix.numpy().decode() if hasattr(prefix, "numpy") else prefix
            for data in glob.glob(path + ".data-*"):
                tear(data)
            print(f"kill_child: SIGKILL inside the original-layout write to {path}", flush=True)
            die()

        tf.raw_ops.SaveV2 = save_v2_then_die
    else:
        raise SystemExit(f"unknown kill point {kill_point!r}; see {__file__}")


if __name__ == "__main__":
    point, script = sys.argv[1], sys.argv[2]
    plant(point)
    sys.argv = [script] + sys.argv[3:]
    sys.path.insert(0, os.path.dirname(os.path.abspath(script)))
    runpy.run_path(script, run_name="__main__")
