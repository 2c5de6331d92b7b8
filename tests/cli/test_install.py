"""pyproject.toml: `pip install .` installs the package with its console commands, which run from
anywhere (the presets come from the package, not the repository's configs/)."""

import os
import subprocess
import sys

import pytest

from repo_paths import ROOT

COMMANDS = ["convbert-pretrain", "convbert-finetune", "convbert-build-dataset", "convbert-plot", "convbert-convert",
            "convbert-export", "convbert-ablation", "convbert-demo", "convbert-quickstart"]


@pytest.mark.slow  # a pip install and two TensorFlow start-ups: 30-60 s
def test_pip_install_gives_the_package_and_working_console_commands(tmp_path):
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", ROOT, "--no-deps", "--no-build-isolation", "-q",
                    "--target", str(target)], check=True, capture_output=True, timeout=600,
                   env=dict(os.environ, TMPDIR=str(tmp_path)), cwd=tmp_path)
    assert sorted(os.listdir(target / "bin")) == sorted(COMMANDS)
    assert (target / "convbert_tf" / "cli" / "quiet.py").exists() and not (target / "tests").exists()
    env = dict(os.environ, PYTHONPATH=str(target), CONVBERT_TF_VERBOSE="")
    help_text = subprocess.run([sys.executable, str(target / "bin" / "convbert-pretrain"), "--helpshort"],  # absl exits 1 after help
                               capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert "--data_dir" in help_text.stdout and "--collective_timeout_s" in help_text.stdout
    demo = subprocess.run([sys.executable, str(target / "bin" / "convbert-demo"), "--config=small", "--seq_length=16"],
                          capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert demo.returncode == 0, demo.stderr[-2000:]
    assert demo.stdout.startswith("ConvBERT small: hidden 256, 12 layers") and demo.stderr == ""
