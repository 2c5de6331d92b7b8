"""The benchmark's FLOP count against the model's weights, and a smoke run of its entry point."""

import subprocess
import sys

import pytest

from convbert_tf import ConvBertEncoder, flops
from repo_paths import ROOT
from tiny_configs import tiny_config


@pytest.mark.parametrize("changes", [{}, {"linear_groups": 2}, {"conv_type": "noconv", "head_ratio": 1},
                                     {"head_ratio": 4, "embedding_size": None}])
def test_macs_per_token_equal_the_kernel_weights_plus_the_weightless_products(changes):
    """Every kernel weight is one multiply-accumulate per token; attention and the window sum
    (2 T C and K C per layer) are the only products without weights."""
    config = tiny_config(**changes)
    seq_length = 10
    encoder = ConvBertEncoder(config)
    kernel_weights = sum(int(w.shape.num_elements()) for w in encoder.weights
                         if w.path.endswith("kernel") and "embeddings/" not in w.path)
    heads = config.heads
    weightless = 2 * seq_length * heads.bottleneck_size
    if config.conv_type == "sdconv":
        weightless += config.conv_kernel_size * heads.bottleneck_size
    assert flops.encoder_macs(config, seq_length) == kernel_weights + config.num_hidden_layers * weightless


def test_bert_mode_costs_more_than_convbert_at_base():
    from convbert_tf.config import ConvBertConfig
    base = ConvBertConfig.from_preset("base")
    bert = base.replace(conv_type="noconv", head_ratio=1, linear_groups=1)
    ratio = flops.mlm_step_flops(base, 128, 19) / flops.mlm_step_flops(bert, 128, 19)
    assert 0.94 < ratio < 0.97  # the paper's "about 4 % fewer FLOPs"


@pytest.mark.slow
def test_quick_benchmark_prints_every_ratio_and_goal():
    result = subprocess.run([sys.executable, "-m", "benchmarks.run", "--quick"], cwd=ROOT, capture_output=True,
                            text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    for expected in ("RATIO layer T=32 time mixed", "RATIO layer T=64 activation memory",
                     "RATIO small mlm step time ConvBERT/BERT", "RATIO small electra step time ConvBERT/BERT",
                     "RATIO small inference latency time ConvBERT/BERT", "RATIO SavedModel/in-process",
                     "RATIO input pipeline rate", "RATIO bfloat16/float32", "RATIO small block time ConvBERT/BERT",
                     "RATIO tiny optimizer update time fused/op by op", "GOAL"):
        assert expected in out, f"missing {expected!r} in:\n{out}"
    # the fused ops' references (TF's GELU, Keras's LayerNorm, two GroupedDense calls) agree with them
    fusion_lines = [line for line in out.splitlines() if "unfused" in line or "as 2 layers" in line
                    or "nothing fused" in line]
    fusion_lines = [line for line in fusion_lines if not line.startswith("RATIO")]
    assert len(fusion_lines) == 4, out
    assert all(float(line.split()[-1]) < 1e-4 for line in fusion_lines), fusion_lines
    # the fused optimizer update and the op-by-op one leave the same weights
    update_line = next(line for line in out.splitlines() if line.startswith("optimizer update of the tiny"))
    assert float(update_line.split("max rel diff ")[1].rstrip(":")) < 1e-5, update_line


def test_sections_flag_is_checked():
    from benchmarks.run import parse_args
    args, sizes = parse_args(["--sections=layer,precision", "--base"])
    assert args.sections == ("layer", "precision") and sizes == ("small", "medium-small", "base")
    assert parse_args([])[0].sections == ("layer", "fusions", "sizes", "serving", "pipeline", "precision")
    with pytest.raises(SystemExit):
        parse_args(["--sections=layer,speed"])


def test_inter_op_threads_follow_threads_unless_given():
    from benchmarks.run import parse_args
    assert parse_args([])[0].inter_op_threads == 2
    assert parse_args(["--threads=4"])[0].inter_op_threads == 4
    assert parse_args(["--threads=4", "--inter_op_threads=1"])[0].inter_op_threads == 1
    with pytest.raises(SystemExit):
        parse_args(["--inter_op_threads=0"])


def test_a_device_tensorflow_does_not_have_is_an_error_not_a_silent_cpu_run(monkeypatch):
    import tensorflow as tf
    from benchmarks import run
    from benchmarks.machine import device_problem
    assert device_problem("/CPU:0") is None
    assert device_problem("cpu") is None
    assert device_problem("/job:localhost/replica:0/task:0/device:CPU:0") is None
    problem = device_problem("/GPU:99")
    assert "no such device" in problem and "/device:CPU:0" in problem
    assert "not a TensorFlow device name" in device_problem("gpu-zero")
    # the entry point stops before measuring anything, naming the flag
    monkeypatch.setattr(tf.config.threading, "set_intra_op_parallelism_threads", lambda n: None)
    monkeypatch.setattr(tf.config.threading, "set_inter_op_parallelism_threads", lambda n: None)
    monkeypatch.setattr(run, "run_all", lambda *a: pytest.fail("measured on a missing device"))
    with pytest.raises(SystemExit) as exit_info:
        run.main(["--device=/GPU:99", "--quick"])
    assert "--device=/GPU:99" in str(exit_info.value.code) and "no such device" in str(exit_info.value.code)
