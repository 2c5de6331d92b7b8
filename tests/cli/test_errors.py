"""The entry points' last-resort handler (convbert_tf/cli/errors.py): a known error prints its
message and exits with its code; any other exception prints one line naming the operation and
its input, writes the traceback to a file (the run's directory, else the temp directory), and
exits 1."""

import json
import os
import subprocess
import sys

import pytest
import tensorflow as tf
from absl import app

from convbert_tf.cli import errors as cli_errors
from convbert_tf.config import ConfigError
from convbert_tf.training.distribute import WORKER_LOST_EXIT_CODE, WorkerLostError
from convbert_tf.pretraining.records import BadRecordError
from repo_paths import ROOT

TF_MESSAGE = ("Graph execution error:\n\nDetected at node IteratorGetNext defined at (most recent call last):\n"
              "  File \"run_pretraining.py\", line 80, in <module>\n\ncorrupted record at 12\n"
              "\t [[{{node IteratorGetNext}}]] [Op:__inference_train_loop_1234]")


def run_guarded(error, capsys, **kwargs):
    """Raises `error` inside exit_on_error; returns (exit code, stderr)."""
    options = dict(program="prog.py", action="pretraining", source="records data/*")
    options.update(kwargs)
    with pytest.raises(SystemExit) as exit_info:
        with cli_errors.exit_on_error(**options):
            raise error
    return exit_info.value.code, capsys.readouterr().err


def test_known_errors_print_their_message_with_their_exit_code(capsys):
    for error, code in ((ConfigError("--hparams: bad key"), 1), (BadRecordError("f: record 3 ..."), 1),
                        (FileExistsError("out exists"), 1), (FloatingPointError("loss is nan"), 2),
                        (WorkerLostError("lost worker 1"), WORKER_LOST_EXIT_CODE)):
        assert run_guarded(error, capsys) == (code, f"prog.py: error: {error}\n")
    assert cli_errors.known_exit_code(ValueError("x")) is None
    assert cli_errors.known_exit_code(ValueError("x"), also_known=(ValueError,)) == 1


def test_usage_errors_and_exits_pass_through():
    for error in (app.UsageError("--input is required"), KeyboardInterrupt(), SystemExit(75)):
        with pytest.raises(type(error)):
            with cli_errors.exit_on_error("prog.py", "x", "y"):
                raise error


def test_unexpected_error_is_one_line_with_the_traceback_in_the_run_directory(capsys, tmp_path):
    def fails_deep_inside():
        raise tf.errors.DataLossError(None, None, TF_MESSAGE)

    with pytest.raises(SystemExit) as exit_info:
        with cli_errors.exit_on_error("prog.py", "pretraining", "records data/*") as operation:
            operation.traceback_dir = str(tmp_path)  # known once the flags are resolved
            fails_deep_inside()
    err = capsys.readouterr().err
    assert exit_info.value.code == 1 and err.count("\n") == 1
    prefix = "prog.py: error: pretraining (records data/*) failed with DataLossError: corrupted record at 12; "
    assert err.startswith(prefix + f"the full traceback is in {tmp_path}{os.sep}prog-traceback-")
    path = err[len(prefix) + len("the full traceback is in "):].strip()
    text = open(path).read()
    assert "operation: pretraining (records data/*)" in text and "in fails_deep_inside" in text
    assert "Traceback (most recent call last)" in text and "corrupted record at 12" in text


def test_traceback_goes_to_the_temp_directory_without_a_usable_run_directory(capsys, tmp_path, monkeypatch):
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path / "tmp"))
    os.makedirs(tmp_path / "tmp")
    code, err = run_guarded(RuntimeError("boom"), capsys, traceback_dir=str(tmp_path / "not_created"))
    assert code == 1 and f"the full traceback is in {tmp_path / 'tmp'}{os.sep}prog-traceback-" in err

    def full_disk(path, text):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("convbert_tf.cli.errors.atomic_write_text", full_disk)
    code, err = run_guarded(RuntimeError("boom"), capsys, traceback_dir=str(tmp_path))
    assert (code, err) == (1, "prog.py: error: pretraining (records data/*) failed with RuntimeError: boom; the "
                              "traceback could not be written ([Errno 28] No space left on device)\n")


def test_one_line_keeps_what_failed():
    assert cli_errors.one_line(tf.errors.DataLossError(None, None, TF_MESSAGE)) == "corrupted record at 12"
    assert cli_errors.one_line(ValueError("a\n  b")) == "a b"
    assert cli_errors.one_line(KeyError()) == "(no message)"
    assert cli_errors.one_line(RuntimeError("x" * 400)) == "x" * 300 + "..."


@pytest.mark.slow  # one process runs all six entry points: 6-15 s
def test_no_entry_point_shows_a_traceback_for_an_unexpected_error(tmp_path):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", TMPDIR=str(tmp_path / "tmp"))
    os.makedirs(tmp_path / "tmp")
    result = subprocess.run([sys.executable, "tests/entry_point_failures.py", str(tmp_path / "work")], cwd=ROOT,
                            capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    reports = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["entry_point"] for r in reports] == ["build_pretraining_dataset.py", "run_pretraining.py",
                                                   "run_finetuning.py", "convbert_tf.convert", "convbert_tf.export",
                                                   "quickstart.py"]
    for report in reports:
        name, lines = report["entry_point"], report["stderr"].strip().splitlines()
        assert report["code"] == 1 and len(lines) == 1 and "Traceback" not in report["stderr"], report
        assert lines[0].startswith(f"{name}: error: ") and " failed with " in lines[0], lines[0]
        path = lines[0].split("; the full traceback is in ")[1]
        assert os.path.dirname(path) == (report["model_dir"] or str(tmp_path / "tmp")), report
        assert "Traceback (most recent call last)" in open(path).read()
