"""Entry points start quietly: TensorFlow's C++ start-up lines stay off stderr unless
CONVBERT_TF_VERBOSE asks for them; anything else written while TensorFlow loads still shows."""

import os
import subprocess
import sys

from convbert_tf.cli import quiet
from repo_paths import ROOT

SAMPLES = [
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    "I0000 00:00:1796426274.181057   13877 port.cc:153] oneDNN custom operations are on. You may see ...",
    "I0000 00:00:1796426274.181350   13877 cudart_stub.cc:31] Could not find cuda drivers on your machine.",
    "I0000 00:00:1796426274.352913   13877 cpu_feature_guard.cc:227] This TensorFlow binary is optimized ...",
    "To enable the following instructions: AVX2 FMA, in other operations, rebuild TensorFlow with the "
    "appropriate compiler flags.",
    "E0000 00:00:1796426277.259192   13877 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error",
]


def run(args, **env):
    return subprocess.run([sys.executable] + args, cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, **env))


def test_the_start_up_lines_are_recognized_and_nothing_else():
    assert all(quiet.is_chatter(line) for line in SAMPLES)
    for line in ("run_pretraining.py: error: model_dir x is in use", "UserWarning: something",
                 "E0000 00:00:1.2 123 op_kernel.cc:1 OP_REQUIRES failed at save_restore_v2_ops.cc"):
        assert not quiet.is_chatter(line), line
    assert quiet.is_verbose({"CONVBERT_TF_VERBOSE": "1"}) and not quiet.is_verbose({"CONVBERT_TF_VERBOSE": "0"})
    assert not quiet.is_verbose({})


def test_an_entry_point_starts_without_the_start_up_lines_unless_asked():
    plain = dict(CONVBERT_TF_VERBOSE="", TF_CPP_MIN_LOG_LEVEL="0")
    result = run(["run_pretraining.py"], **plain)  # no flags: a usage error after TensorFlow has loaded
    assert result.returncode == 1 and "Flag --data_dir must have a value" in result.stderr
    for word in ("oneDNN", "cuda", "cuInit", "cpu_feature_guard", "absl::InitializeLog"):
        assert word not in result.stderr, result.stderr
    verbose = run(["run_pretraining.py"], CONVBERT_TF_VERBOSE="1", TF_CPP_MIN_LOG_LEVEL="0")
    assert any(quiet.is_chatter(line) for line in verbose.stderr.splitlines()), verbose.stderr
    assert "Flag --data_dir must have a value" in verbose.stderr


# A stand-in for TensorFlow that writes start-up lines and one real problem to file descriptor 2.
FAKE_TENSORFLOW = """
import os, types
os.write(2, ("\\n".join(SAMPLES) + "\\na real problem\\n").encode())
config = types.SimpleNamespace(list_physical_devices=lambda: os.write(2, SAMPLES[-1].encode() + b"\\n"))
"""
LOAD_QUIET = """
import importlib.util, sys
spec = importlib.util.spec_from_file_location("quiet", sys.argv[1])
quiet = importlib.util.module_from_spec(spec)
spec.loader.exec_module(quiet)
quiet.import_tensorflow_quietly()
print("tensorflow" in sys.modules)
"""


def test_other_output_while_tensorflow_loads_still_reaches_stderr(tmp_path):
    (tmp_path / "tensorflow").mkdir()
    (tmp_path / "tensorflow" / "__init__.py").write_text(f"SAMPLES = {SAMPLES!r}\n" + FAKE_TENSORFLOW)
    quiet_path = os.path.join(ROOT, "convbert_tf", "cli", "quiet.py")
    result = run(["-c", LOAD_QUIET, quiet_path], CONVBERT_TF_VERBOSE="", PYTHONPATH=str(tmp_path))
    assert (result.returncode, result.stdout, result.stderr) == (0, "True\n", "a real problem\n")
    verbose = run(["-c", LOAD_QUIET, quiet_path], CONVBERT_TF_VERBOSE="1", PYTHONPATH=str(tmp_path))
    assert verbose.stdout == "False\n" and verbose.stderr == ""  # verbose: TensorFlow is left to load as usual
