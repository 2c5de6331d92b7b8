"""The model on the tensorflow, jax and torch Keras backends: tests/backends/cases.py run once per
backend, jax and torch each in its own process (NumPy twins, `.keras` round trip, jax.jit, checkpoints; TensorFlow
blocked while the model is imported and run), then the backends' outputs compared with each other
and the jax-written checkpoints read here, on tensorflow.
"""

import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from convbert_tf import load_encoder, load_original_checkpoint
from tests.backends import cases
from tests.backends.cases import ATOL, encoder_with_params
from tiny_configs import padded_batch, tiny_config

CASES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "cases.py")
BACKENDS = ("tensorflow", "jax", "torch")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """{backend: its output folder}, after cases.py passed on each (tensorflow first, here: the
    others read its checkpoints)."""
    root = tmp_path_factory.mktemp("backends")
    folders = {backend: str(root / backend) for backend in BACKENDS}
    cases.main(folders["tensorflow"])  # this process's backend
    for backend in BACKENDS[1:]:
        env = dict(os.environ, KERAS_BACKEND=backend, CUDA_VISIBLE_DEVICES="", JAX_PLATFORMS="cpu")
        result = subprocess.run([sys.executable, CASES, folders[backend], folders["tensorflow"]], env=env,
                                capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, f"{backend}:\n{result.stdout[-3000:]}\n{result.stderr[-6000:]}"
        assert f"{backend}: all cases pass" in result.stdout
    return folders


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_backend_outputs_match_tensorflow(runs, backend):
    reference = np.load(os.path.join(runs["tensorflow"], "outputs.npz"))
    outputs = np.load(os.path.join(runs[backend], "outputs.npz"))
    assert sorted(outputs.files) == sorted(reference.files)
    for key in reference.files:
        if key.endswith("_index"):
            np.testing.assert_array_equal(outputs[key], reference[key], err_msg=key)
        else:  # gradients reach |g| ~ 25: float32 sums agree to 1e-5 of the largest entry
            scale = max(1.0, float(np.max(np.abs(reference[key])))) if key.startswith("grad_") else 1.0
            np.testing.assert_allclose(outputs[key], reference[key], atol=ATOL * scale, rtol=0, err_msg=key)


def test_jax_written_checkpoints_load_on_tensorflow(runs):
    config = tiny_config(linear_groups=2)
    encoder, _ = encoder_with_params(config, seed=11)  # the weights cases.py saves
    batch = {k: tf.constant(v) for k, v in padded_batch(config).items()}
    want = encoder(batch)["sequence_output"].numpy()
    for loaded in (load_original_checkpoint(os.path.join(runs["jax"], "original"), config),
                   load_encoder(os.path.join(runs["jax"], "native"))):
        np.testing.assert_allclose(loaded(batch)["sequence_output"].numpy(), want, atol=ATOL, rtol=0)


def test_model_imports_without_tensorflow():
    """config, ops, layers, encoder and flops import with TensorFlow blocked; the TensorFlow-only
    names stay reachable lazily."""
    code = ("import sys; sys.modules['tensorflow'] = None\n"
            "import convbert_tf, convbert_tf.ops, convbert_tf.layers, convbert_tf.encoder, convbert_tf.flops\n"
            "import convbert_tf.checkpoints.names\n"
            "assert 'load_encoder' in convbert_tf.__all__ and not convbert_tf.ops.TENSORFLOW\n"
            "print('ok')")
    env = dict(os.environ, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu")
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-3000:]
