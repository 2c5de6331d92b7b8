"""An ablation's data: pretraining records built from a corpus (or a given data_dir), and its tasks."""

from __future__ import annotations

import json
import os

from convbert_tf.config import ConfigError
from convbert_tf.data import pretraining_dataset, tokenization
from convbert_tf import io
from convbert_tf.finetuning.tasks.registry import TASKS

BUILD_RECORD = "ablation_build.json"
# With --finetune_tasks=all: every task directory of finetuning_data/ that names a task.
ALL_TASKS = "all"


def build_data(corpus_dir: str, data_dir: str, vocab_size: int, max_seq_length: int, num_files: int,
               log=print) -> str:
    """Learns a vocab from `corpus_dir` and writes its pretraining records (`num_files` files, the
    last held out for evaluation) into `data_dir`, unless an earlier call built them with the same
    options (recorded in <data_dir>/ablation_build.json). Returns data_dir."""
    if num_files < 2:
        raise ConfigError(f"--num_data_files must be at least 2 (the last file is held out), got {num_files}")
    wanted = {"corpus_dir": os.path.abspath(corpus_dir), "vocab_size": vocab_size,
              "max_seq_length": max_seq_length, "num_files": num_files}
    record = os.path.join(data_dir, BUILD_RECORD)
    if os.path.exists(record):
        with open(record, encoding="utf-8") as f:
            built = json.load(f)
        if built == wanted:
            return data_dir
        changed = sorted(k for k in wanted if built.get(k) != wanted[k])
        raise ConfigError(f"{data_dir} holds records built with other options ("
                          + ", ".join(f"{k} {built.get(k)!r} there vs {wanted[k]!r} now" for k in changed)
                          + "); use another --output_dir")
    log(f"building the pretraining data from {corpus_dir} into {data_dir}")
    try:
        summary = pretraining_dataset.build_pretraining_dataset(
            corpus_dir, os.path.join(data_dir, "pretrain_tfrecords"), os.path.join(data_dir, "vocab.txt"),
            vocab_size=vocab_size, max_seq_length=max_seq_length, num_output_files=num_files,
            log=lambda line: log(f"  {line}"))
    except pretraining_dataset.DatasetBuildError as e:
        raise ConfigError(f"--corpus_dir: {e}") from None
    log(f"  {summary.vocab_size} tokens, {summary.stats.examples} examples of {max_seq_length} tokens "
        f"in {num_files} files (the last held out)")
    io.atomic_write_json(record, wanted)
    return data_dir


def vocab_size(data_dir: str) -> int:
    """Tokens in <data_dir>/vocab.txt."""
    try:
        return len(tokenization.read_vocab(os.path.join(data_dir, "vocab.txt")))
    except tokenization.VocabError as e:
        raise ConfigError(f"--data_dir: {e}") from None


def finetune_tasks(requested, finetune_data_dir: str) -> tuple:
    """The tasks of --finetune_tasks, each checked to be under <finetune_data_dir>/finetuning_data/;
    `all` takes every task found there."""
    root = os.path.join(finetune_data_dir, "finetuning_data")
    present = sorted(name for name in (os.listdir(root) if os.path.isdir(root) else ())
                     if name in TASKS and os.path.isdir(os.path.join(root, name)))
    requested = [name for name in requested if name]
    if requested == [ALL_TASKS]:
        if not present:
            raise ConfigError(f"--finetune_tasks=all: no task directory under {root}; the tasks are {', '.join(TASKS)}")
        return tuple(present)
    for name in requested:
        if name not in TASKS:
            raise ConfigError(f"--finetune_tasks: unknown task {name!r}; the tasks are {', '.join(TASKS)}")
        if name not in present:
            raise ConfigError(f"--finetune_tasks: {name} has no data: {os.path.join(root, name)} does not exist "
                              "(set --finetune_data_dir to the data_dir that holds finetuning_data/)")
    return tuple(requested)
