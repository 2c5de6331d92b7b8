"""The quickstart end to end (--quick), its output-folder policy, and the loss plot from event files."""

import ast
import dataclasses
import io
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from convbert_tf import plotting
from convbert_tf.quickstart import predict
from convbert_tf.quickstart.output_dir import check_usable, claimed_output_dir
from convbert_tf.quickstart.settings import QuickstartError, make_settings, settings_dict
from convbert_tf.quickstart.paths import Paths
from convbert_tf.quickstart.progress_view import ProgressView
from convbert_tf.training.progress import ProgressEvent
from repo_paths import ROOT

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def run(args, timeout=900):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run([sys.executable] + args, cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)


def snapshot(folder):
    """{relative path: (size, mtime_ns)} of every file under `folder`."""
    files = {}
    for root, _, names in os.walk(folder):
        for name in names:
            path = os.path.join(root, name)
            info = os.stat(path)
            files[os.path.relpath(path, folder)] = (info.st_size, info.st_mtime_ns)
    return files


def png_size(path):
    with open(path, "rb") as f:
        head = f.read(24)
    assert head[:8] == PNG_SIGNATURE and head[12:16] == b"IHDR", f"{path} is not a PNG"
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")


def write_state(folder, **changes):
    """A quickstart state file as an earlier invocation leaves it (settings of --quick)."""
    settings = settings_dict(make_settings(True, None, None))
    state = {"format": 1, "settings": settings, "started": "2026-01-01 00:00:00", "finished": None, "steps": {}}
    state.update(changes)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "quickstart_state.json"), "w") as f:
        json.dump(state, f)


# ----- the output folder: refused before any long work ----------------------------------------
def test_a_folder_of_other_files_is_refused_even_with_overwrite(tmp_path):
    (tmp_path / "notes.txt").write_text("mine\n")
    before = snapshot(tmp_path)
    for extra in ([], ["--overwrite"]):
        result = run(["quickstart.py", f"--output_dir={tmp_path}"] + extra, timeout=120)
        assert result.returncode == 1, result.stderr[-2000:]
        assert "never mixes" in result.stderr and "notes.txt" in result.stderr
    assert snapshot(tmp_path) == before  # not even a lock file


def test_a_finished_run_is_refused_without_overwrite(tmp_path):
    write_state(tmp_path, finished="2026-01-01 00:05:00")
    (tmp_path / "summary.json").write_text("{}\n")
    before = snapshot(tmp_path)
    result = run(["quickstart.py", "--quick", f"--output_dir={tmp_path}"], timeout=120)
    assert result.returncode == 1
    assert "already holds a finished quickstart run" in result.stderr and "--overwrite" in result.stderr
    assert "loading TensorFlow" not in result.stdout  # decided before any long work
    after = snapshot(tmp_path)
    after.pop(".quickstart.lock", None)
    assert after == before


def test_an_unfinished_run_resumes_only_under_its_own_settings(tmp_path):
    write_state(tmp_path)
    other = run(["quickstart.py", f"--output_dir={tmp_path}"], timeout=120)  # the default settings, not --quick
    assert other.returncode == 1
    assert "other settings" in other.stderr and "quick True there vs False now" in other.stderr
    refused = run(["quickstart.py", "--quick", "--noresume", f"--output_dir={tmp_path}"], timeout=120)
    assert refused.returncode == 1 and "--noresume refuses it" in refused.stderr


def test_an_output_dir_that_cannot_be_created_fails_fast(tmp_path):
    (tmp_path / "a_file").write_text("x")  # a folder below a file cannot be made, whoever runs the test
    result = run(["quickstart.py", f"--output_dir={tmp_path / 'a_file' / 'out'}"], timeout=120)
    assert result.returncode == 1
    assert "cannot create the output folder" in result.stderr and "writable --output_dir" in result.stderr
    assert "loading TensorFlow" not in result.stdout


def test_a_read_only_output_dir_fails_fast(tmp_path):
    read_only = tmp_path / "read_only"
    read_only.mkdir()
    read_only.chmod(0o555)
    try:
        if os.access(read_only, os.W_OK):
            pytest.skip("this user (root) can write into a read-only folder, so there is nothing to refuse")
        for output_dir in (read_only, read_only / "out"):  # an existing folder, and one to create in it
            result = run(["quickstart.py", f"--output_dir={output_dir}"], timeout=120)
            assert result.returncode == 1
            assert "Permission denied" in result.stderr and "writable --output_dir" in result.stderr
    finally:
        read_only.chmod(0o755)


def test_too_little_free_space_is_an_error_naming_the_need(tmp_path):
    with pytest.raises(QuickstartError) as refused:
        check_usable(str(tmp_path), 10 ** 12)
    message = str(refused.value)
    assert " free, but the run needs about " in message and "GiB" in message and "--output_dir" in message
    assert os.listdir(tmp_path) == []  # the write probe is gone


def test_a_new_output_dir_refused_for_space_is_not_left_behind(tmp_path):
    settings = dataclasses.replace(make_settings(True, None, None), required_free_mb=10 ** 12)
    out = tmp_path / "new"
    with pytest.raises(QuickstartError, match="free, but the run needs about"):
        with claimed_output_dir(Paths(str(out)), settings, overwrite=False, resume=True, log=print):
            pass
    assert not out.exists()


def test_a_claimed_output_dir_is_locked_against_a_second_quickstart(tmp_path):
    paths, settings = Paths(str(tmp_path / "qs")), make_settings(True, None, None)
    with claimed_output_dir(paths, settings, overwrite=False, resume=True, log=print) as state:
        assert state["steps"] == {} and state["settings"] == settings_dict(settings)
        with pytest.raises(QuickstartError, match="in use by another run.*choose another --output_dir"):
            with claimed_output_dir(paths, settings, overwrite=False, resume=True, log=print):
                pass
    assert sorted(os.listdir(paths.root)) == ["quickstart_state.json"]  # the lock is gone


# ----- the progress bar and the serving program --------------------------------------------------
class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_the_progress_view_shows_events_and_passes_other_lines():
    log = io.StringIO()
    view = ProgressView(("gen", "disc"), stream=log)
    view.progress(ProgressEvent(step=5, total_steps=10, losses={"gen": 3.5, "disc": 0.5}, rate=1234.0,
                                unit="tok/s", eta_s=65.0))
    view.write("saved a checkpoint\n")
    view.close()
    assert log.getvalue() == ("    step 5/10 | gen 3.5000 | disc 0.5000 | 1,234 tok/s | ETA 0:01:05\n"
                              "    saved a checkpoint\n")
    assert view.points == [(5, {"gen": 3.5, "disc": 0.5})]

    terminal = Terminal()
    bar = ProgressView(("loss",), stream=terminal)
    for step, loss in ((1, 0.75), (2, 0.5)):
        bar.progress(ProgressEvent(step=step, total_steps=20, losses={"loss": loss}, rate=10.0, unit="examples/s",
                                   eta_s=30.0, loss_note="per example"))
    bar.close()
    assert "] 2/20  loss 0.500 (from 0.750)  ETA 0:00:30" in terminal.getvalue()
    assert terminal.getvalue().endswith("\n")


def test_the_serving_program_finds_the_classifier_of_its_output_folder():
    paths = Paths("/runs/qs")
    assert os.path.join(paths.root, predict.SAVED_MODEL) == paths.classifier
    tree = ast.parse(open(predict.__file__).read())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert imported <= {"argparse", "json", "os", "sys", "tensorflow", "tensorflow_text"}, imported


# ----- the loss plot --------------------------------------------------------------------------
def write_events(event_dir, tag, points):
    writer = tf.summary.create_file_writer(str(event_dir))
    with writer.as_default():
        for step, value in points:
            tf.summary.scalar(tag, value, step=step)
    writer.close()


def test_curves_are_read_from_event_files_and_drawn_into_a_png(tmp_path):
    model_dir = tmp_path / "models" / "tiny"
    write_events(model_dir / "train", "mlm_loss", [(10, 8.0), (20, 6.5), (30, 6.0)])
    write_events(model_dir / "train", "disc_loss", [(10, 0.6), (20, 0.5), (30, 0.45)])
    # A resumed run writes a second file; its value for step 30 replaces the first file's.
    write_events(model_dir / "train", "mlm_loss", [(30, 5.5), (40, 5.0)])
    write_events(model_dir / "finetuning_models" / "sst_model_1" / "train", "loss", [(5, 0.7), (10, 0.2)])
    curves = plotting.collect_curves(str(tmp_path))
    mlm = [c for c in curves["pretraining"] if c.tag == "mlm_loss"]
    assert len(mlm) == 1 and mlm[0].run == os.path.join("models", "tiny")
    assert mlm[0].steps == (10, 20, 30, 40) and np.allclose(mlm[0].values, [8.0, 6.5, 5.5, 5.0])
    [finetuning] = curves["finetuning"]
    assert finetuning.run == "sst_model_1" and finetuning.steps == (5, 10) and np.isclose(finetuning.last, 0.2)
    output = tmp_path / "plots" / "curves.png"
    plotting.plot_curves(curves, str(output))
    width, height = png_size(output)
    assert width > height > 100  # three panels side by side
    assert [n for n in os.listdir(tmp_path / "plots")] == ["curves.png"]  # no temporary file left
    with pytest.raises(plotting.NoCurvesError, match="no TensorBoard event files"):
        plotting.collect_curves(str(tmp_path / "plots"))


@pytest.mark.slow  # end to end: CI runs it in the slow tier
def test_plot_curves_command(tmp_path):
    write_events(tmp_path / "train", "mlm_loss", [(1, 9.0), (2, 8.0)])
    write_events(tmp_path / "train", "disc_loss", [(1, 0.7), (2, 0.6)])
    result = run(["plot_curves.py", f"--run_dir={tmp_path}", f"--output={tmp_path / 'c.png'}"], timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "mlm_loss 9.0000 -> 8.0000" in result.stdout and "wrote" in result.stdout
    png_size(tmp_path / "c.png")
    missing = run(["plot_curves.py", f"--run_dir={tmp_path / 'nothing'}"], timeout=300)
    assert missing.returncode == 1 and "is not a directory" in missing.stderr


# ----- the whole quickstart -------------------------------------------------------------------
@pytest.mark.slow
def test_quick_run_makes_every_artifact_and_a_second_run_refuses(tmp_path):
    out = tmp_path / "qs"
    process = subprocess.Popen([sys.executable, "quickstart.py", "--quick", f"--output_dir={out}"], cwd=ROOT,
                               env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    stdout, stderr = process.communicate(timeout=900)
    assert process.returncode == 0, stdout[-3000:] + stderr[-3000:]
    for number in range(1, 7):
        assert f"[{number}/6]" in stdout
    assert "python build_pretraining_dataset.py --corpus_dir=" in stdout
    assert "run_pretraining.py --data_dir=" in stdout and "run_finetuning.py --data_dir=" in stdout
    assert f"Everything is in {out}/" in stdout

    summary = json.load(open(out / "summary.json"))
    data, pretraining, finetuning = summary["data"], summary["pretraining"], summary["finetuning"]
    # Every artifact.
    assert len(os.listdir(out / "corpus")) == summary["corpus"]["files"] > 50
    vocab = open(data["vocab"]).read().splitlines()
    assert len(vocab) == data["vocab_tokens"] and vocab[:5] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    assert all(os.path.getsize(path) > 0 for path in data["records"]) and data["examples"] > 100
    assert os.path.exists(pretraining["checkpoint"] + ".index")
    assert os.path.basename(pretraining["checkpoint"]) == f"ckpt-{pretraining['steps']}"
    assert os.path.exists(os.path.join(pretraining["saved_model"], "saved_model.pb"))
    assert os.listdir(pretraining["events"])
    for split in ("train", "dev", "test"):
        assert os.path.exists(os.path.join(finetuning["data_dir"], f"{split}.tsv"))
    assert os.path.exists(os.path.join(finetuning["saved_model"], "saved_model.pb"))
    assert json.load(open(finetuning["results"]))["sst"]["median"]["accuracy"] == finetuning["dev_accuracy"]
    assert os.path.exists(os.path.join(finetuning["trial_dir"], "dev_predictions", "sst_dev.json"))
    png_size(summary["plot"]["png"])
    # The pretraining loss fell, and fine-tuning learned the rule better than chance.
    assert pretraining["mlm_loss"]["last"] < pretraining["mlm_loss"]["first"] - 1.0, pretraining
    assert pretraining["mlm_loss"]["last_step"] == pretraining["steps"]
    assert finetuning["dev_accuracy"] > max(75.0, finetuning["chance_accuracy"]), finetuning
    # The exported classifier answered in another process that did not import this project.
    served = json.load(open(out / "predictions.json"))
    assert served["process_id"] != process.pid and not served["imported_convbert_tf"]
    assert len(served["predictions"]) == summary["serving"]["answers"] == 5
    for row in served["predictions"]:
        assert row["label"] in ("0", "1") and 0.5 <= row["probability"] <= 1.0
        assert row["sentence"] in stdout
    state = json.load(open(out / "quickstart_state.json"))
    assert state["finished"] == summary["finished"]

    # A second run into the same folder refuses, and leaves the first run's files as they were.
    before = snapshot(out)
    again = run(["quickstart.py", "--quick", f"--output_dir={out}"], timeout=120)
    assert again.returncode == 1
    assert "already holds a finished quickstart run" in again.stderr and "--overwrite" in again.stderr
    assert snapshot(out) == before

    # An unfinished run resumes: only the missing steps run again.
    del state["steps"]["plot"]
    state["finished"] = None
    json.dump(state, open(out / "quickstart_state.json", "w"))
    os.remove(out / "curves.png")
    resumed = run(["quickstart.py", "--quick", f"--output_dir={out}"])
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert "resuming it" in resumed.stdout and "[3/6] Pretraining: done in an earlier run, skipped" in resumed.stdout
    assert "[6/6] Loss curves" in resumed.stdout and "plot_curves.py --run_dir=" in resumed.stdout
    png_size(out / "curves.png")
    assert json.load(open(out / "quickstart_state.json"))["finished"]
