"""One job of the dataset builder: its corpus files, tokenized and packed into examples, written
round-robin into its output shards.

Job j of P owns the corpus files at sorted positions i = j (mod P) and the output files
i = j (mod P), shuffles its files with its own `random.Random("{seed}:{j}")` and packs with the
same generator, so the output is fixed by (corpus, vocab, options, seed, P, N). Imported by
pretraining_dataset.py and parallel_jobs.py.
"""
import dataclasses
import os
import random
from typing import Callable, Iterator

import tensorflow as tf

from convbert_tf.data import example_builder
from convbert_tf.data import tokenization
from convbert_tf.data.corpus_files import read_corpus_lines

OUTPUT_PREFIX = "pretrain_data.tfrecord"
_LINES_PER_BATCH = 1024


def output_file_name(index: int, num_files: int) -> str:
    return f"{OUTPUT_PREFIX}-{index}-of-{num_files}"


@dataclasses.dataclass
class BuildStats:
    """Counts from one job, or summed over all jobs."""

    files: int = 0
    documents: int = 0  # documents with at least one non-blank line
    examples: int = 0
    tokens: int = 0  # non-padding positions written ([CLS] and [SEP] included)
    truncated_tokens: int = 0  # sentence tokens cut off because an example overflowed
    skipped_lines: int = 0  # lines of invalid UTF-8 skipped under on_bad_utf8="skip"
    first_skipped_line: str = ""  # "<file>:<line>" of the first of them (of the first job with any)

    def __add__(self, other: "BuildStats") -> "BuildStats":
        counts = {f.name: getattr(self, f.name) + getattr(other, f.name)
                  for f in dataclasses.fields(self) if f.name != "first_skipped_line"}
        return BuildStats(**counts, first_skipped_line=self.first_skipped_line or other.first_skipped_line)


@dataclasses.dataclass(frozen=True)
class JobSpec:
    """What one job needs; plain values, so that it pickles into a spawned process."""

    job_id: int
    files: tuple
    shard_indices: tuple
    num_output_files: int
    tmp_dir: str
    vocab_tokens: tuple
    max_seq_length: int
    blanks_separate_docs: bool
    do_lower_case: bool
    strip_accents: bool
    seed: int
    on_bad_utf8: str
    original_segment_bug: bool


def _serialize(example: example_builder.PretrainingExample) -> bytes:
    def int64_feature(values):
        return tf.train.Feature(int64_list=tf.train.Int64List(value=values))

    features = tf.train.Features(
        feature={
            "input_ids": int64_feature(example.input_ids),
            "input_mask": int64_feature(example.input_mask),
            "segment_ids": int64_feature(example.segment_ids),
        }
    )
    # deterministic=True fixes the order of the feature map, so equal runs give equal bytes.
    return tf.train.Example(features=features).SerializeToString(deterministic=True)


def _file_examples(path, spec, tokenizer, builder, stats) -> Iterator[example_builder.PretrainingExample]:
    """Examples completed while reading one file; the end of the file ends a document."""
    document_open = False

    def replay(items):
        nonlocal document_open
        sentences = iter(tokenizer.tokenize([item for item in items if item is not None]))
        for item in items:
            if item is None:
                if document_open:
                    stats.documents += 1
                    document_open = False
                example = builder.end_document()
            else:
                document_open = True
                example = builder.add_sentence(next(sentences))
            if example is not None:
                yield example

    pending = []  # sentences (str) and document boundaries (None), in file order
    for line in read_corpus_lines(path, spec.on_bad_utf8, stats):
        if line:
            pending.append(line)
        elif spec.blanks_separate_docs:
            pending.append(None)
        if len(pending) >= _LINES_PER_BATCH:
            yield from replay(pending)
            pending = []
    pending.append(None)
    yield from replay(pending)


def run_job(spec: JobSpec, report: Callable[[tuple], None]) -> BuildStats:
    """Packs and writes one job's files into its shards in spec.tmp_dir; `report` gets a progress
    message after each file. Returns the job's counts."""
    rng = random.Random(f"{spec.seed}:{spec.job_id}")
    files = list(spec.files)
    rng.shuffle(files)
    tokenizer = tokenization.BertTokenizer(spec.vocab_tokens, spec.do_lower_case, spec.strip_accents)
    ids = tokenizer.special_token_ids
    builder = example_builder.ExampleBuilder(
        spec.max_seq_length, ids.cls, ids.sep, ids.pad, rng, spec.original_segment_bug
    )
    stats = BuildStats()
    writers = [
        tf.io.TFRecordWriter(os.path.join(spec.tmp_dir, output_file_name(i, spec.num_output_files)))
        for i in spec.shard_indices
    ]
    try:
        for path in files:
            for example in _file_examples(path, spec, tokenizer, builder, stats):
                writers[stats.examples % len(writers)].write(_serialize(example))
                stats.examples += 1
                stats.tokens += sum(example.input_mask)
            stats.files += 1
            report(("progress", spec.job_id, stats.files, stats.examples))
    finally:
        for writer in writers:
            writer.close()
    stats.truncated_tokens = builder.truncated_tokens
    return stats
