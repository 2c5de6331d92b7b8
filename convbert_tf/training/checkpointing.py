"""Checkpoints of a training run: the manager, resuming, initializing from a pretrained model,
the chief's directory versus a non-chief worker's throwaway one, and the vocab checks.

In a multi-worker run every worker saves (saving is collective) but only the chief writes
into the run's directory; the others write into a throwaway directory and resume from the
chief's checkpoints.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import tempfile

import tensorflow as tf

from convbert_tf.checkpoints import CheckpointError, load_encoder, load_original_checkpoint, resolve_checkpoint_prefix
from convbert_tf.config import ConfigError
from convbert_tf.data.tokenization import VocabError
from convbert_tf.encoder import ConvBertEncoder

# init_checkpoint's value that starts fine-tuning from random weights on purpose.
RANDOM_INIT = "random"


def is_original_checkpoint(prefix: str) -> bool:
    """Whether `prefix` is an original-release (TF1, `electra/...` names) checkpoint, not one of ours."""
    return any(name.startswith("electra/") for name, _ in tf.train.list_variables(prefix))


def checkpoint_manager(checkpoint: tf.train.Checkpoint, directory: str, max_to_keep: int,
                       step_counter: tf.Variable) -> tf.train.CheckpointManager:
    """A manager writing `ckpt-<step>` files, numbered by the optimizer's step counter."""
    return tf.train.CheckpointManager(checkpoint, directory, max_to_keep=max_to_keep, checkpoint_name="ckpt",
                                      step_counter=step_counter)


def run_directory(chief: bool, directory: str) -> str:
    """`directory` on the chief; a throwaway directory, removed at exit, on other workers."""
    if chief:
        return directory
    scratch = tempfile.mkdtemp(prefix="convbert-worker-")
    atexit.register(shutil.rmtree, scratch, ignore_errors=True)
    return scratch


@contextlib.contextmanager
def scratch_directory(prefix: str):
    """A non-chief worker's throwaway directory for one part of a run, removed afterwards."""
    scratch = tempfile.mkdtemp(prefix=prefix)
    try:
        yield scratch
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def checkpoint_to_resume(manager: tf.train.CheckpointManager, chief: bool, chief_directory: str) -> str | None:
    """The latest checkpoint to resume from: the chief's own, which other workers read too."""
    return manager.latest_checkpoint if chief else tf.train.latest_checkpoint(chief_directory)


def resume(checkpoint: tf.train.Checkpoint, prefix: str, step_counter: tf.Variable) -> int:
    """Restores everything `checkpoint` tracks from `prefix`; returns the step it was saved at."""
    checkpoint.read(prefix).assert_existing_objects_matched().expect_partial()
    return int(step_counter.numpy())


def check_workers_agree(strategy: tf.distribute.Strategy, step: int, model_dir: str) -> None:
    """Refuses to train when the workers would resume from different steps (their weights and
    input positions would differ): model_dir is then not shared by all hosts."""
    steps = strategy.gather(strategy.run(lambda: tf.constant([step], tf.int64)), axis=0).numpy().tolist()
    if len(set(steps)) > 1:
        raise ConfigError(
            f"the workers found different checkpoints to resume from in model_dir {model_dir} "
            f"(steps {steps}, one per replica): every worker must read the chief's model_dir; put it on "
            "storage all hosts share (gs://, NFS)")


def check_init_checkpoint(path: str | None) -> str | None:
    """The checkpoint prefix to start from; None for "random". An empty init_checkpoint is refused,
    so that fine-tuning never starts from random weights by accident."""
    if path == RANDOM_INIT:
        return None
    if not path:
        raise ConfigError("no init_checkpoint: pass --data_dir/--model_name of a pretrained model, set "
                          "\"init_checkpoint\" in --hparams, or \"init_checkpoint\": \"random\" to start "
                          "from random weights on purpose")
    try:
        return resolve_checkpoint_prefix(path)
    except CheckpointError as e:
        raise CheckpointError(f"init_checkpoint: {e}") from None


def load_pretrained_encoder(prefix: str | None, config) -> ConvBertEncoder:
    """This project's checkpoint, an original-release one, or random weights when prefix is None."""
    if prefix is None:
        return ConvBertEncoder(config)
    if is_original_checkpoint(prefix):
        return load_original_checkpoint(prefix, config)
    return load_encoder(prefix, config)


def checked_vocab(vocab_file: str, vocab_size: int, read, missing_hint: str):
    """`read(vocab_file)` -> (vocab, its token count), after checking the file exists and before
    checking the model's vocab_size has room for its tokens; VocabError becomes ConfigError."""
    if not vocab_file or not os.path.exists(vocab_file):
        raise ConfigError(f"vocab file {vocab_file} does not exist; {missing_hint}")
    try:
        vocab, count = read(vocab_file)
    except VocabError as e:
        raise ConfigError(str(e)) from None
    if count > vocab_size:
        raise ConfigError(f"vocab file {vocab_file} has {count} tokens but vocab_size is {vocab_size}; "
                          f"set \"vocab_size\": {count} in --hparams")
    return vocab
