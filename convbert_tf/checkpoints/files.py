"""Checkpoint files on disk, whatever their layout: finding a prefix, writing one under a
temporary name and renaming it into place, the `checkpoint` state file."""

from __future__ import annotations

import contextlib
import os
import shutil

import tensorflow as tf

from convbert_tf import io


class CheckpointError(ValueError):
    """A checkpoint that cannot be read into the model; the message names the file and variables."""


def resolve_checkpoint_prefix(checkpoint_path: str) -> str:
    """A checkpoint prefix from a prefix or a directory holding a `checkpoint` state file.

    Never falls back to anything: a path that names no checkpoint is an error (the original
    silently fine-tuned from random weights in that case).
    """
    path = os.fspath(checkpoint_path)
    if os.path.isdir(path):
        prefix = tf.train.latest_checkpoint(path)
        if prefix is None:
            indexes = sorted(f for f in os.listdir(path) if f.endswith(".index"))
            hint = (f"; it holds {indexes[:3]}: pass one of those prefixes (without '.index')"
                    if indexes else "")
            raise CheckpointError(f"directory {path} has no 'checkpoint' state file naming a checkpoint{hint}")
        if not os.path.exists(prefix + ".index"):
            raise CheckpointError(f"{path}/checkpoint names {prefix}, but {prefix}.index does not exist")
        return prefix
    if path.endswith(".index"):
        path = path[: -len(".index")]
    if not os.path.exists(path + ".index"):
        raise CheckpointError(f"no checkpoint at {checkpoint_path}: expected {path}.index, or a directory "
                              "with a 'checkpoint' file")
    return path


def _move_checkpoint_files(tmp_prefix: str, final_prefix: str) -> None:
    """Renames a written checkpoint into place: data shards first, the index last.

    A reader needs the `.index`, so until the last rename the new checkpoint is invisible, and
    an interrupted move never leaves an index pointing at missing data.
    """
    tmp_dir, tmp_base = os.path.split(tmp_prefix)
    final_base = os.path.basename(final_prefix)
    if os.path.exists(final_prefix + ".index"):
        os.remove(final_prefix + ".index")
    files = sorted(f for f in os.listdir(tmp_dir) if f.startswith(tmp_base + "."))
    for f in sorted(files, key=lambda f: f.endswith(".index")):
        os.replace(os.path.join(tmp_dir, f),
                   os.path.join(os.path.dirname(final_prefix), final_base + f[len(tmp_base):]))


def write_checkpoint_state(directory: str, prefix: str) -> None:
    """Points the directory's `checkpoint` state file at `prefix` (atomically, relative path)."""
    base = os.path.relpath(prefix, directory)
    io.atomic_write_text(os.path.join(directory, "checkpoint"),
                         f'model_checkpoint_path: "{base}"\nall_model_checkpoint_paths: "{base}"\n')


@contextlib.contextmanager
def staged_checkpoint(prefix: str, companions=()):
    """Writes the checkpoint `prefix` through a temporary directory beside it (`io.temporary_name`).

    Yields the temporary prefix to write to. When the block ends normally the checkpoint's files
    are renamed into place (the index last), then each of `companions` (base names of files the
    block wrote in the temporary directory, such as config.json), then the directory's
    `checkpoint` state file is pointed at `prefix`. The temporary directory is removed in any case.
    """
    directory, base = os.path.split(prefix)
    os.makedirs(directory, exist_ok=True)
    staging = io.temporary_name(prefix)
    os.makedirs(staging)
    try:
        yield os.path.join(staging, base)
        _move_checkpoint_files(os.path.join(staging, base), prefix)
        for name in companions:
            os.replace(os.path.join(staging, name), os.path.join(directory, name))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    write_checkpoint_state(directory, prefix)
