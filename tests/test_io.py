"""convbert_tf.io: the one atomic write. Whole files or none, on a local disk and through
tf.io.gfile (ram:// here, as gs:// in use), and temporary names that run_guard's clean-up finds."""

import fnmatch
import json
import os
import signal
import stat
import subprocess
import sys

import pytest
import tensorflow as tf

from convbert_tf import io
from convbert_tf.run_guard import remove_interrupted_writes
from repo_paths import ROOT

# A child that writes `new` over `old` and is SIGKILLed between the write and the rename, once the
# temporary file is complete (the last moment a reader could see a partial file, were the write
# made in place).
KILLED_WRITER = """
import os, signal, sys
from convbert_tf import io
def die(*args):
    print(os.listdir(os.path.dirname(sys.argv[1])), flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
os.chmod = die
io.atomic_write_bytes(sys.argv[1], b"new" * 1_000_000)
"""


def test_text_bytes_and_json_land_whole_with_a_plain_file_mode(tmp_path):
    path = tmp_path / "deep" / "dir" / "a.txt"
    assert io.atomic_write_text(path, "é\nline\n") == str(path)
    assert path.read_bytes() == "é\nline\n".encode("utf-8")
    io.atomic_write_bytes(path, b"\x00\x01")
    assert path.read_bytes() == b"\x00\x01"
    io.atomic_write_json(tmp_path / "v.json", {"b": 1, "a": "ü"}, sort_keys=True)
    assert (tmp_path / "v.json").read_text("utf-8") == '{\n  "a": "ü",\n  "b": 1\n}\n'
    with pytest.raises(ValueError):
        io.atomic_write_json(tmp_path / "nan.json", {"x": float("nan")})
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o666 & ~umask
    assert sorted(os.listdir(tmp_path)) == ["deep", "v.json"]  # no temporary file left
    assert os.listdir(tmp_path / "deep" / "dir") == ["a.txt"]


def test_temporary_names_match_the_one_glob():
    name = os.path.basename(io.temporary_name("/some/dir/config.json"))
    assert fnmatch.fnmatch(name, io.TEMPORARY_GLOB) and io.is_temporary(name)
    assert io.temporary_name("x.json").startswith("./.x.json" + io.TEMPORARY_MARK)
    assert io.temporary_name("a/b/") != io.temporary_name("a/b/")
    assert not io.is_temporary("config.json") and not io.is_temporary(".run.lock")


def test_a_failed_write_leaves_neither_file_nor_temporary(tmp_path, monkeypatch):
    (tmp_path / "a.txt").write_text("old")

    def broken_replace(source, target):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError):
        io.atomic_write_text(tmp_path / "a.txt", "new")
    assert os.listdir(tmp_path) == ["a.txt"] and (tmp_path / "a.txt").read_text() == "old"


def test_remote_paths_go_through_gfile():
    directory = "ram://convbert-io-test/run"
    path = io.atomic_write_json(f"{directory}/hparams.json", {"a": 1})
    with tf.io.gfile.GFile(path) as f:
        assert json.load(f) == {"a": 1}
    io.atomic_write_text(path, "replaced\n")
    with tf.io.gfile.GFile(path) as f:
        assert f.read() == "replaced\n"
    assert tf.io.gfile.listdir(directory) == ["hparams.json"]
    assert not os.path.exists("ram:")  # no local folder named after the scheme


def test_replace_directory_swaps_a_finished_directory_in(tmp_path):
    final, staged = tmp_path / "saved_model", tmp_path / io.temporary_name("saved_model").lstrip("./")
    final.mkdir()
    (final / "old").write_text("old")
    staged.mkdir()
    (staged / "new").write_text("new")
    io.replace_directory(staged, final)
    assert os.listdir(final) == ["new"] and os.listdir(tmp_path) == ["saved_model"]
    staged.mkdir()
    io.replace_directory(staged, tmp_path / "fresh")
    assert sorted(os.listdir(tmp_path)) == ["fresh", "saved_model"]


def test_a_kill_mid_write_leaves_the_old_file_whole_and_a_temporary_the_clean_up_removes(tmp_path):
    target = tmp_path / "config.json"
    target.write_text("old")
    child = subprocess.run([sys.executable, "-c", KILLED_WRITER, str(target)], cwd=ROOT, capture_output=True,
                           text=True, timeout=120, env=dict(os.environ, PYTHONPATH=ROOT))
    assert child.returncode == -signal.SIGKILL, child.stderr[-2000:]
    assert target.read_text() == "old"  # never half of the new one
    leftovers = [n for n in os.listdir(tmp_path) if n != "config.json"]
    assert len(leftovers) == 1 and fnmatch.fnmatch(leftovers[0], io.TEMPORARY_GLOB), leftovers
    assert remove_interrupted_writes(str(tmp_path)) == [str(tmp_path / leftovers[0])]
    assert os.listdir(tmp_path) == ["config.json"]
