"""benchmarks.run --backend: the figures' arithmetic, the flag checks, and (slow) runs end to end."""

import os
import subprocess
import sys

import numpy as np
import pytest

from benchmarks.backends import cli, figures
from benchmarks.backends.hf_worker import describe
from benchmarks.backends.worker import bert_config, size_config, synthetic_batch
from convbert_tf import ConvBertConfig, flops
from repo_paths import ROOT, TESTS


def test_tokens_per_second_and_mfu_arithmetic():
    assert figures.tokens_per_second(16, 128, 0.5) == 4096
    assert figures.matmul_flops(1000, calls=3) == 6e9
    # 4096 tokens/s x 1e9 FLOPs per token = 4.096 TFLOP/s, over an 8.192 TFLOP/s peak: half
    assert figures.mfu(4096, 1e9, 8.192e12) == pytest.approx(0.5)
    with pytest.raises(ValueError):
        figures.mfu(1.0, 1.0, 0.0)
    with pytest.raises(ValueError):
        figures.tokens_per_second(1, 1, 0.0)


def test_time_ratio_is_judged_against_the_flop_ratio():
    assert figures.time_ratio_against_flops(0.9, 1.0, 95, 100) == pytest.approx((0.9, 0.95, True))
    assert figures.time_ratio_against_flops(1.1, 1.0, 95, 100)[2] is False


def test_masked_positions_match_the_pretraining_hparams():
    from convbert_tf.pretraining.hparams import resolve_hparams
    for length in (32, 128, 512):
        assert figures.masked_positions(length) == resolve_hparams({"max_seq_length": length}).predictions_per_seq


def test_flop_ratio_of_the_compared_models_at_base():
    config = ConvBertConfig.from_preset("base")
    bert = bert_config(config)
    assert (bert.head_ratio, bert.conv_type, bert.linear_groups) == (1, "noconv", 1)
    described = describe(config, bert, 128, 19)
    assert described["ConvBERT"]["flops"] == flops.mlm_step_flops(config, 128, 19)
    assert 0.94 < described["ConvBERT"]["flops"] / described["BERT"]["flops"] < 0.97
    medium = ConvBertConfig.from_preset("medium-small")
    assert describe(medium, bert_config(medium), 128, 19)["ConvBERT"]["kwargs"]["num_groups"] == 2


def test_hugging_face_bert_has_no_embedding_projection_in_its_flops():
    config = ConvBertConfig.from_preset("small")  # E 128 < D 256
    described = describe(config, bert_config(config), 128, 19)
    assert described["BERT"]["flops"] == flops.mlm_step_flops(
        bert_config(config).replace(embedding_size=config.hidden_size), 128, 19)
    assert described["ConvBERT"]["kwargs"]["embedding_size"] == 128
    assert "embedding_size" not in described["BERT"]["kwargs"]


def test_synthetic_batch_masks_distinct_positions_after_cls():
    batch = synthetic_batch(3, 16, 5, 100)
    assert batch["input_ids"].shape == (3, 16) and batch["masked_lm_ids"].shape == (3, 5)
    for row in batch["masked_lm_positions"]:
        assert len(set(row)) == 5 and row.min() >= 1 and row.max() < 16
    assert all(v.dtype == np.int32 for v in batch.values())


@pytest.mark.parametrize("flag", ["--backend=mxnet", "--backend=jax,tpu", "--device=tpu", "--device=/GPU:0",
                                  "--sizes=large", "--batch=0", "--steps=0"])
def test_unknown_backend_device_or_size_is_a_clear_error(flag, capsys):
    with pytest.raises(SystemExit):
        cli.parse_args([flag])
    assert flag.split("=")[0] in capsys.readouterr().err


def test_default_shapes_per_device_and_quick():
    assert (cli.parse_args(["--device=gpu"])["batch"], cli.parse_args([])["batch"]) == (128, 16)
    options = cli.parse_args(["--backend=jax,torch", "--quick", "--sizes=small,base"])
    assert options["backends"] == ("jax", "torch") and options["sizes"] == ("small", "base")
    assert (options["batch"], options["seq_length"], options["predictions"]) == (4, 32, 4)


def test_run_hands_backend_flags_to_the_backend_mode():
    assert cli.wants_backends(["--backend=jax"]) and cli.wants_backends(["--compare_hf"])
    assert not cli.wants_backends(["--quick", "--device=/GPU:0"])


def test_cpu_workers_of_jax_and_torch_see_no_gpu():
    env = cli.worker_env("jax", "cpu")
    assert env["KERAS_BACKEND"] == "jax" and env["JAX_PLATFORMS"] == "cpu" and env["CUDA_VISIBLE_DEVICES"] == ""
    assert cli.worker_env("torch", "gpu").get("CUDA_VISIBLE_DEVICES") == os.environ.get("CUDA_VISIBLE_DEVICES")


def test_side_by_side_rows():
    rows = {"ConvBERT": {"eager": {"tokens_per_s": 1500.0, "ms": 12.0, "mfu": 0.25}}}
    table = figures.side_by_side([{"source": "x", "rows": rows}])
    assert table[2] == "| x | ConvBERT | eager | 1,500 | 12.0 | 25.0 % |"


def test_rounds_merge_into_medians_per_row():
    def result(rate):
        return {"source": "x", "sizes": [{"size": "small", "peak": 1.0,
                                          "rows": {"BERT": {"eager": {"tokens_per_s": rate, "ms": 1e3 / rate,
                                                                      "mfu": rate / 1e4}}}}]}
    merged = figures.median_of_rounds([result(100.0), result(300.0), result(200.0)])
    assert merged["source"] == "x" and merged["sizes"][0]["size"] == "small"
    assert merged["sizes"][0]["rows"]["BERT"]["eager"] == pytest.approx({"tokens_per_s": 200.0, "ms": 5.0,
                                                                          "mfu": 0.02})
    assert cli.parse_args(["--rounds=3"])["rounds"] == 3
    with pytest.raises(SystemExit):
        cli.parse_args(["--rounds=0"])


def test_quick_config_is_the_tiny_model():
    config = size_config("small", quick=True)
    assert (config.hidden_size, config.num_hidden_layers, config.resolved_embedding_size) == (64, 2, 32)


@pytest.mark.slow
def test_tensorflow_backend_quick_end_to_end_and_hf_skipped_without_transformers(tmp_path):
    (tmp_path / "transformers.py").write_text("raise ImportError('transformers is not installed here')\n")
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    result = subprocess.run([sys.executable, "-m", "benchmarks.run", "--backend=tensorflow", "--quick",
                             "--compare_hf", "--jit_compile"], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    assert "RATIO small tensorflow tf.function step time ConvBERT/BERT" in out, out
    assert "RATIO small tensorflow compiled step time ConvBERT/BERT" in out, out
    assert "| this project, tensorflow | BERT | compiled |" in out, out
    assert "--compare_hf: skipped" in out and "transformers is not installed here" in out, out


@pytest.mark.slow
def test_keras_step_harness_gives_the_same_losses_on_jax_and_torch():
    """The jitted stateless step (jax) and the torch step of one toy model from the same
    weights give the losses of the same AdamW steps, to float rounding."""
    losses = {}
    for name in ("jax", "torch"):
        run = subprocess.run([sys.executable, os.path.join(TESTS, "benchmarks", "keras_step_toy.py")], cwd=ROOT,
                             env=dict(os.environ, KERAS_BACKEND=name, PYTHONPATH=ROOT), capture_output=True,
                             text=True, timeout=600)
        assert run.returncode == 0, run.stderr[-3000:]
        losses[name] = [[float(x) for x in line.split()[1:]] for line in run.stdout.splitlines()
                        if line.startswith("LOSSES")]
    reference = losses["torch"][0]  # torch eager
    for name, runs in losses.items():
        for run in runs:
            np.testing.assert_allclose(run, reference, rtol=2e-5)
