"""The one way this package writes a file: a temporary name beside it, then a rename into place.

A reader, or a run that was killed mid-write, never sees half a file. Every temporary name has the
form `.<name>.tmp-<pid>-<random>` (see `TEMPORARY_GLOB`), so `run_guard` can find and remove what a
killed run left with a single pattern. Paths with a scheme (`gs://...`, `ram://...`) go through
`tf.io.gfile`; local paths through `os`, keeping the mode a plain `open()` would give.

May be imported by any module of the package; imports TensorFlow only for paths with a scheme.
"""

import json
import os
import shutil
import uuid

TEMPORARY_MARK = ".tmp-"
TEMPORARY_GLOB = ".*.tmp-*"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# The mode open() would give a new file: 0666 less the process's umask.
_PLAIN_FILE_MODE = 0o666 & ~_umask()


def is_remote(path) -> bool:
    """True for paths that name a file system by scheme (gs://, ram://, ...), handled by tf.io.gfile."""
    return "://" in os.fspath(path)


def _gfile():
    import tensorflow as tf  # only for remote paths: keeps plain writes free of TensorFlow
    return tf.io.gfile


def temporary_name(path) -> str:
    """A fresh temporary name in the same directory as `path`, matching `TEMPORARY_GLOB`."""
    path = os.fspath(path).rstrip("/")
    directory, name = path.rsplit("/", 1) if "/" in path else (".", path)
    return f"{directory}/.{name}{TEMPORARY_MARK}{os.getpid()}-{uuid.uuid4().hex[:8]}"


def is_temporary(name: str) -> bool:
    """True for a base name made by `temporary_name`."""
    return name.startswith(".") and TEMPORARY_MARK in name


def makedirs(path) -> None:
    path = os.fspath(path)
    if is_remote(path):
        _gfile().makedirs(path)
    else:
        os.makedirs(path, exist_ok=True)


def atomic_write_bytes(path, data: bytes) -> str:
    """Writes `data` to `path` through a temporary file beside it; creates the directory. Returns the path."""
    path = os.fspath(path)
    parent = os.path.dirname(path)
    if parent:
        makedirs(parent)
    temporary = temporary_name(path)
    if is_remote(path):
        gfile = _gfile()
        try:
            with gfile.GFile(temporary, "wb") as f:
                f.write(data)
            gfile.rename(temporary, path, overwrite=True)
        except BaseException:
            if gfile.exists(temporary):
                gfile.remove(temporary)
            raise
        return path
    try:
        with open(temporary, "wb") as f:
            f.write(data)
        os.chmod(temporary, _PLAIN_FILE_MODE)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise
    return path


def atomic_write_text(path, text: str) -> str:
    """Writes `text` as UTF-8 with '\\n' line ends, atomically. Returns the path."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path, value, *, indent: int = 2, sort_keys: bool = False) -> str:
    """`value` as JSON (non-ASCII kept; NaN and infinity refused) and a final newline, atomically."""
    text = json.dumps(value, indent=indent, sort_keys=sort_keys, ensure_ascii=False, allow_nan=False)
    return atomic_write_text(path, text + "\n")


def replace_directory(temporary_dir, final_dir) -> None:
    """Moves a finished `temporary_dir` to `final_dir`, replacing what was there only once the new one is in place.

    The old directory is first renamed aside (a temporary name), the new one renamed in, then the old
    one removed; if the second rename fails the old one is put back.
    """
    temporary_dir, final_dir = os.fspath(temporary_dir), os.fspath(final_dir)
    if is_remote(final_dir):
        gfile = _gfile()
        if gfile.exists(final_dir):
            gfile.rmtree(final_dir)
        gfile.rename(temporary_dir, final_dir)
        return
    if not os.path.exists(final_dir):
        os.rename(temporary_dir, final_dir)
        return
    old_dir = temporary_name(final_dir)
    os.rename(final_dir, old_dir)
    try:
        os.rename(temporary_dir, final_dir)
    except BaseException:
        os.rename(old_dir, final_dir)
        raise
    shutil.rmtree(old_dir, ignore_errors=True)
