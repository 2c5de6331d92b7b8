"""Identical starting conditions within a seed: shared initial weights, and a digest of the batches.

Keras draws each initializer's seed from one seeded stream in the order the layers are built, so
two architectures built with the same seed get different values even for weights of the same
path and shape once one of them builds a layer the other lacks (the span convolution's layers
come before the attention output and the feed-forward layers). `initial_weights` removes that
dependence: a weight takes the value that the first ladder architecture with a weight of the
same path and shape draws from the seed (`variants.reference_variants`); the values are drawn by
the layers' own initializers. The result is written as a checkpoint that the run starts from
(the pretraining hparam `init_checkpoint`).

`batch_digest` hashes the first masked training batches of a run as the trainer reads them
(masked inputs, positions, labels, weights and the generator's sampling seeds), so that a report
can show that every variant of a seed saw the same data.
"""

from __future__ import annotations

import collections
import hashlib
import io
import itertools
import json
import os

import numpy as np
import tensorflow as tf

from convbert_tf.io import atomic_write_json, replace_directory, temporary_name
from convbert_tf.pretraining import run as trainer
from convbert_tf.pretraining.hparams import PretrainingHParams

INIT_DIR = "init"
INIT_PREFIX = "weights"
INIT_RECORD = "init.json"
# Training batches hashed per run.
DIGEST_BATCHES = 4


def network_weights(run: trainer.Pretraining) -> dict:
    """{(path, shape): variable} of every network a pretraining checkpoint holds."""
    weights = {}
    for network in run.model.networks().values():
        for weight in network.weights:
            weights.setdefault((weight.path, tuple(weight.shape)), weight)
    return weights


def initial_weights(hp: PretrainingHParams, references, strategy, out=None) -> tuple:
    """The run's Pretraining (models built as the trainer builds them, seeded by hp.seed) with its
    weights replaced by the shared values; and {reference name or "own": weights taken from it}.

    Args:
      hp: the run's hparams.
      references: (name, PretrainingHParams) in order; the first with a weight of the same path and
        shape gives its value. One with the run's config is the run's own draw.
    """
    run = trainer.Pretraining(hp, strategy, out=out or io.StringIO())
    weights = network_weights(run)
    sources = {}
    for name, reference_hp in references:
        if reference_hp.model_config() == hp.model_config():  # the run's own draw: it has every weight
            sources.update({key: name for key in weights if key not in sources})
            break
        reference = trainer.Pretraining(reference_hp, strategy, out=io.StringIO())
        for key, weight in network_weights(reference).items():
            if key in weights and key not in sources:
                sources[key] = name
                weights[key].assign(weight.numpy())
        del reference
    return run, dict(collections.Counter(sources.get(key, "own") for key in weights))


def batch_digest(run: trainer.Pretraining, num_batches: int = DIGEST_BATCHES) -> str:
    """SHA-256 of the first `num_batches` training batches of `run` as the trainer reads them:
    every feature (masked ids, masked positions, labels, weights, sampling seeds, ...) by name."""
    train_files, _ = trainer.split_files(run.hp)
    dataset = run.distributed_dataset(train_files, run.hp.train_batch_size, True)
    digest = hashlib.sha256()
    for batch in itertools.islice(iter(dataset), num_batches):
        for key in sorted(batch):
            for local in run.strategy.experimental_local_results(batch[key]):
                digest.update(key.encode())
                digest.update(np.ascontiguousarray(local.numpy()).tobytes())
    return digest.hexdigest()


def parameter_counts(run: trainer.Pretraining) -> dict:
    """Weights of the discriminator (the encoder that is kept) and of the generator with both heads."""
    networks = run.model.networks()
    encoder = sum(int(np.prod(w.shape)) for w in networks["encoder"].weights)
    others = sum(int(np.prod(w.shape)) for key, net in networks.items() if key != "encoder" for w in net.weights)
    return {"discriminator": encoder, "generator_and_heads": others}


def init_prefix(model_dir: str) -> str:
    return os.path.join(model_dir, INIT_DIR, INIT_PREFIX)


def read_init_record(model_dir: str) -> dict | None:
    """The record `write_initial_checkpoint` leaves, or None when the run has none yet."""
    path = os.path.join(model_dir, INIT_DIR, INIT_RECORD)
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def write_initial_checkpoint(hp: PretrainingHParams, references, strategy) -> dict:
    """Writes <model_dir>/init/: the shared initial weights (checkpoint `weights`) and init.json
    (the batch digest, the parameter counts, where the weights came from). The directory is
    written under a temporary name and renamed into place. Returns the record."""
    run, sources = initial_weights(hp, references, strategy)
    record = {"batch_digest": batch_digest(run), "digest_batches": DIGEST_BATCHES,
              "parameters": parameter_counts(run), "weights_from": sources}
    final = os.path.join(hp.model_dir, INIT_DIR)
    temporary = temporary_name(final)
    os.makedirs(temporary)
    tf.train.Checkpoint(**run.model.networks()).write(os.path.join(temporary, INIT_PREFIX))
    atomic_write_json(os.path.join(temporary, INIT_RECORD), record)
    replace_directory(temporary, final)
    return record
