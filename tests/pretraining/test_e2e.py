"""Both pretraining scripts end to end on a tiny corpus: text -> vocab + TFRecords -> checkpoints."""

import json
import os
import subprocess
import sys

import pytest
import tensorflow as tf

from repo_paths import ROOT
WORDS = "the quick brown fox jumps over a lazy dog while seven wizards quietly hex jumbo boxes".split()


def write_corpus(corpus_dir, documents=12, lines=6):
    os.makedirs(corpus_dir)
    for d in range(documents):
        with open(os.path.join(corpus_dir, f"doc{d}.txt"), "w") as f:
            for n in range(lines):
                words = [WORDS[(d * 5 + n * 3 + k) % len(WORDS)] for k in range(8 + n % 4)]
                f.write(" ".join(words).capitalize() + ".\n")


def run(args):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run([sys.executable] + args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.slow  # end to end: CI runs it in the slow tier
def test_build_then_pretrain(tmp_path):
    data_dir = tmp_path / "data"
    write_corpus(str(tmp_path / "corpus"))
    built = run(["build_pretraining_dataset.py", f"--corpus_dir={tmp_path / 'corpus'}",
                 f"--output_dir={data_dir / 'pretrain_tfrecords'}", f"--vocab_file={data_dir / 'vocab.txt'}",
                 "--vocab_size=200", "--max_seq_length=32", "--num_output_files=2"])
    assert built.returncode == 0, built.stderr[-3000:]
    vocab_size = len(open(data_dir / "vocab.txt").read().splitlines())
    hparams = {"model_size": "small", "vocab_size": vocab_size, "max_seq_length": 32, "train_batch_size": 4,
               "num_train_steps": 6, "num_warmup_steps": 2, "iterations_per_loop": 3,
               "save_checkpoints_steps": 3, "embedding_size": 16, "generator_hidden_size": 0.5,
               "model_hparam_overrides": {"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 4,
                                          "intermediate_size": 64, "max_position_embeddings": 32}}
    trained = run(["run_pretraining.py", f"--data_dir={data_dir}", "--model_name=tiny",
                   f"--hparams={json.dumps(hparams)}"])
    assert trained.returncode == 0, trained.stderr[-3000:]
    assert "step 6/6 | gen " in trained.stdout and "tok/s" in trained.stdout and "ETA" in trained.stdout
    model_dir = data_dir / "models" / "tiny"
    assert os.path.basename(tf.train.latest_checkpoint(str(model_dir))) == "ckpt-6"
    assert (model_dir / "config.json").exists() and (model_dir / "hparams.json").exists()
    # The end-of-run exports: a servable SavedModel and the original release's layout.
    assert (model_dir / "saved_model" / "saved_model.pb").exists()
    original = dict(tf.train.list_variables(str(model_dir / "original_layout" / "model.ckpt-6")))
    assert original["electra/encoder/layer_0/attention/self/conv_attn_key/depthwise_kernel"] == [9, 32, 1]
    assert "generator_predictions/output_bias" in original and "discriminator_predictions/dense_1/kernel" in original
    assert "exported" in trained.stdout
