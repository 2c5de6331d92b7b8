"""What the sections run: the synthetic records, the hparams of each size, the production train
loop on a fixed batch, and the configs of the block-level measurements.

Legend: V vocab size, T length.
"""

import contextlib
import io
import os
import tempfile

import keras
import numpy as np
import tensorflow as tf

from benchmarks.options import POLICIES, QUICK_OVERRIDES, QUICK_VOCAB, STEPS_PER_CALL, Options, Shapes
from convbert_tf.config import ConvBertConfig
from convbert_tf.pretraining import run as trainer
from convbert_tf.pretraining.hparams import resolve_hparams

def write_data(data_dir: str, vocab_size: int, seq_length: int, records: int, seed: int = 0) -> str:
    """vocab.txt (V tokens) and TFRecords of full-length sequences from a sparse bigram chain.

    Each word has 3 possible successors, so an MLM can learn the text (the loss curve of the
    precision check falls) while every record is as long as a packed pretraining example.
    """
    rng = np.random.default_rng(seed)
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    with open(os.path.join(data_dir, "vocab.txt"), "w") as f:
        f.write("\n".join(specials + [f"w{i}" for i in range(vocab_size - len(specials))]) + "\n")
    words = min(vocab_size - 5, 2000)
    successors = rng.integers(5, 5 + words, size=(5 + words, 3))
    path = os.path.join(data_dir, "pretrain_data.tfrecord")
    with tf.io.TFRecordWriter(path) as writer:
        for _ in range(records):
            ids = [int(rng.integers(5, 5 + words))]
            for _ in range(seq_length - 3):
                ids.append(int(successors[ids[-1], rng.integers(0, 3)]))
            ids = [2] + ids + [3]
            features = {"input_ids": ids, "input_mask": [1] * seq_length, "segment_ids": [0] * seq_length}
            example = tf.train.Example(features=tf.train.Features(feature={
                k: tf.train.Feature(int64_list=tf.train.Int64List(value=v)) for k, v in features.items()}))
            writer.write(example.SerializeToString())
    return path


class Workspace:
    """A temporary data dir with a vocab and records, shared by every measurement."""

    def __init__(self, options: Options, shapes: Shapes):
        self.tmp = tempfile.TemporaryDirectory(prefix="convbert-bench-")
        self.dir = self.tmp.name
        vocab = QUICK_VOCAB if options.quick else 30522
        records = 64 if options.quick else 1024
        self.vocab_size = vocab
        self.records = write_data(self.dir, vocab, shapes.seq_length, records)

    def hparams(self, size: str, shapes: Shapes, options: Options, bert: bool, electra: bool, **changes):
        values = dict(model_size=size, vocab_size=self.vocab_size, max_seq_length=shapes.seq_length,
                      train_batch_size=shapes.train_batch, electra_objective=electra,
                      conv_implementation=options.conv_implementation, export_at_end=False,
                      vocab_file=os.path.join(self.dir, "vocab.txt"), pretrain_tfrecords=self.records,
                      model_dir=os.path.join(self.dir, "model"), num_train_steps=1000, num_warmup_steps=10)
        if options.quick:
            values.update(model_hparam_overrides=dict(QUICK_OVERRIDES), embedding_size=32)
        if bert:  # BERT mode of the same code: all heads self-attention, no convolution, plain FFN
            values.update(conv_type="noconv", head_ratio=1, linear_groups=1)
        values.update(changes)
        return resolve_hparams(values)

    def close(self):
        self.tmp.cleanup()


def bert_of(config: ConvBertConfig) -> ConvBertConfig:
    return config.replace(conv_type="noconv", head_ratio=1, linear_groups=1)


@contextlib.contextmanager
def global_policy(dtype: str):
    """Pretraining builds its model under the global policy; set it for one construction."""
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(POLICIES[dtype])
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


class TrainStep:
    """The production train loop (trainer.Pretraining.make_train_loop) on one repeated batch."""

    def __init__(self, hp, options: Options, dtype: str, jit_compile: bool = False, batches: int = 1):
        self.strategy = tf.distribute.OneDeviceStrategy(options.device)
        with global_policy(dtype):
            self.run = trainer.Pretraining(hp, self.strategy, jit_compile=jit_compile, out=io.StringIO())
        dataset = self.run.distributed_dataset(hp.pretrain_tfrecords, hp.train_batch_size, True)
        iterator = iter(dataset)
        taken = [next(iterator) for _ in range(batches)]
        fixed = tf.data.Dataset.from_tensor_slices(
            {k: tf.stack([b[k] for b in taken]) for k in taken[0]}).repeat()  # cycles `batches` batches
        self.iterator = iter(self.strategy.experimental_distribute_dataset(fixed))
        self.loop = self.run.make_train_loop()
        self.tokens_per_step = hp.train_batch_size * hp.max_seq_length

    def __call__(self, steps=STEPS_PER_CALL):
        values = self.loop(self.iterator, tf.constant(steps))
        return {k: float(v) for k, v in values.items()}


def block_config(size: str, options: Options) -> ConvBertConfig:
    """The config of `size`; with --quick a tiny one with grouped linear layers."""
    return (ConvBertConfig.from_preset(size) if not options.quick
            else ConvBertConfig(**QUICK_OVERRIDES, linear_groups=2))
