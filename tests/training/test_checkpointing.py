"""training/checkpointing.py: original-checkpoint detection, init-from, the manager and resuming,
chief versus throwaway directories, and the vocab checks."""

import os

import numpy as np
import pytest
import tensorflow as tf
from finetuning_data import VOCAB
from tf1_checkpoint import write_tf1_checkpoint

from convbert_tf import ConvBertConfig, ConvBertEncoder
from convbert_tf.checkpoints import CheckpointError
from convbert_tf.config import ConfigError
from convbert_tf.training import checkpointing

CONFIG = ConvBertConfig(vocab_size=len(VOCAB), hidden_size=32, num_hidden_layers=1, num_attention_heads=4,
                        intermediate_size=64, embedding_size=16, max_position_embeddings=32, conv_kernel_size=3)


def saved_encoder(directory):
    """An encoder with built weights and its checkpoint prefix (this project's layout)."""
    encoder = ConvBertEncoder(CONFIG)
    encoder({"input_ids": tf.zeros([1, 4], tf.int32)})
    return encoder, tf.train.Checkpoint(encoder=encoder).write(os.path.join(directory, "ckpt-1"))


def test_original_checkpoints_are_told_from_ours(tmp_path):
    original = write_tf1_checkpoint({"electra/embeddings/word_embeddings": np.zeros([4, 2], np.float32)},
                                    str(tmp_path / "original" / "model.ckpt"))
    _, ours = saved_encoder(str(tmp_path / "ours"))
    assert checkpointing.is_original_checkpoint(original)
    assert not checkpointing.is_original_checkpoint(ours)


def test_init_checkpoint_is_never_a_silent_random_start(tmp_path):
    assert checkpointing.check_init_checkpoint(checkpointing.RANDOM_INIT) is None
    for empty in ("", None):
        with pytest.raises(ConfigError, match="no init_checkpoint"):
            checkpointing.check_init_checkpoint(empty)
    with pytest.raises(CheckpointError, match="^init_checkpoint: "):
        checkpointing.check_init_checkpoint(str(tmp_path / "missing"))
    encoder, prefix = saved_encoder(str(tmp_path))
    assert checkpointing.check_init_checkpoint(prefix) == prefix
    loaded = checkpointing.load_pretrained_encoder(prefix, CONFIG)
    for a, b in zip(encoder.weights, loaded.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert isinstance(checkpointing.load_pretrained_encoder(None, CONFIG), ConvBertEncoder)


def test_manager_numbers_by_step_and_resume_restores_it(tmp_path):
    step = tf.Variable(0, dtype=tf.int64)
    weight = tf.Variable(1.0)
    checkpoint = tf.train.Checkpoint(step=step, weight=weight)
    manager = checkpointing.checkpoint_manager(checkpoint, str(tmp_path), 1, step)
    step.assign(3)
    weight.assign(2.5)
    manager.save(checkpoint_number=3)
    assert os.path.basename(manager.latest_checkpoint) == "ckpt-3"
    step.assign(0)
    weight.assign(0.0)
    latest = checkpointing.checkpoint_to_resume(manager, True, str(tmp_path))
    assert checkpointing.resume(checkpoint, latest, step) == 3 and float(weight.numpy()) == 2.5
    # A non-chief worker's manager points at its throwaway directory; it resumes from the chief's.
    other = checkpointing.checkpoint_manager(checkpoint, str(tmp_path / "worker"), 1, step)
    assert checkpointing.checkpoint_to_resume(other, False, str(tmp_path)) == latest


def test_chief_writes_into_its_directory_and_other_workers_into_throwaway_ones(tmp_path):
    assert checkpointing.run_directory(True, str(tmp_path)) == str(tmp_path)
    scratch = checkpointing.run_directory(False, str(tmp_path))
    assert scratch != str(tmp_path) and os.path.isdir(scratch)  # removed at exit
    with checkpointing.scratch_directory("convbert-test-") as directory:
        assert os.path.isdir(directory)
        open(os.path.join(directory, "x"), "w").close()
    assert not os.path.exists(directory)


def test_vocab_checks(tmp_path):
    def read(path):
        with open(path) as f:
            tokens = f.read().split()
        return tokens, len(tokens)

    with pytest.raises(ConfigError, match="missing.txt does not exist; build one"):
        checkpointing.checked_vocab(str(tmp_path / "missing.txt"), 10, read, "build one")
    path = tmp_path / "vocab.txt"
    path.write_text("a\nb\nc\n")
    with pytest.raises(ConfigError, match='has 3 tokens but vocab_size is 2; set "vocab_size": 3 in --hparams'):
        checkpointing.checked_vocab(str(path), 2, read, "")
    assert checkpointing.checked_vocab(str(path), 3, read, "") == ["a", "b", "c"]
