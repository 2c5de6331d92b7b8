"""Builds ConvBERT pretraining TFRecords from a directory of text files (see convbert_tf/data/).

  python build_pretraining_dataset.py --corpus_dir=corpus/ --output_dir=pretrain_tfrecords/ \
      --vocab_file=vocab.txt --num_processes=4
  convbert-build-dataset --corpus_dir=corpus/ --output_dir=pretrain_tfrecords/   # once installed

Exit code 1: a bad input (the message names the file, line or flag), or an unexpected error (one
line; the traceback is written to a file in the temp directory).
"""

import os
import sys

from absl import flags

from convbert_tf.cli.errors import exit_on_error
from convbert_tf.cli.flags import no_extra_arguments, run_app
from convbert_tf.data import pretraining_dataset

FLAGS = flags.FLAGS


def define_flags(flag_values=flags.FLAGS) -> None:
    def define(kind, name, default, help_text, *args):
        getattr(flags, f"DEFINE_{kind}")(name, default, *args, help_text, flag_values=flag_values)

    define("string", "corpus_dir", None, "Directory of UTF-8 text files, one sentence/paragraph per line.")
    define("string", "output_dir", None, "Where pretrain_data.tfrecord-{i}-of-{N} are written.")
    define("string", "vocab_file", None, "WordPiece vocab file. Default: <output_dir>/vocab.txt.")
    define("integer", "vocab_size", None, "If set and --vocab_file does not exist, learn a vocab of about this "
           "size from the corpus and write it to --vocab_file.")
    define("integer", "max_seq_length", 128, "Tokens per example.")
    define("integer", "num_processes", 1, "Parallel jobs.")
    define("integer", "num_output_files", 1000, "Number N of output files (at least --num_processes).")
    define("bool", "blanks_separate_docs", False, "Blank lines end documents (else only the end of a file "
           "does). A real boolean: --blanks_separate_docs=false is false.")
    define("bool", "do_lower_case", True, "Lower-case the text.")
    define("bool", "strip_accents", True, "With --do_lower_case, strip accents (--nostrip_accents keeps them).")
    define("integer", "seed", 0, "Seed of the per-job random generators.")
    define("enum", "on_bad_utf8", "fail", "fail: stop with an error naming the file and line; skip: skip such "
           "lines and count them.", list(pretraining_dataset.ON_BAD_UTF8_CHOICES))
    define("bool", "original_segment_bug", False, "Assign segments with the original release's buggy "
           "condition (segment B only holds text that precedes A).")
    flags.mark_flags_as_required(["corpus_dir", "output_dir"], flag_values=flag_values)


def print_summary(summary) -> None:
    stats = summary.stats
    learned = ", learned from the corpus" if summary.vocab_learned else ""
    first = f", the first at {stats.first_skipped_line}" if stats.skipped_lines else ""
    print(f"files:            {stats.files}")
    print(f"documents:        {stats.documents}")
    print(f"examples:         {stats.examples}")
    print(f"tokens:           {stats.tokens} (non-padding positions, [CLS]/[SEP] included)")
    print(f"truncated tokens: {stats.truncated_tokens}")
    print(f"skipped lines:    {stats.skipped_lines} (invalid UTF-8{first})")
    print(f"vocab:            {summary.vocab_file} ({summary.vocab_size} tokens{learned})")
    print(f"output:           {len(summary.output_files)} files in {os.path.dirname(summary.output_files[0])}")


def main(argv, program: str = "build_pretraining_dataset.py"):
    no_extra_arguments(argv)
    printer = pretraining_dataset.ProgressPrinter(sys.stderr)
    with exit_on_error(program, "building pretraining records", f"--corpus_dir {FLAGS.corpus_dir}"):
        try:
            summary = pretraining_dataset.build_pretraining_dataset(
                FLAGS.corpus_dir, FLAGS.output_dir, FLAGS.vocab_file, vocab_size=FLAGS.vocab_size,
                max_seq_length=FLAGS.max_seq_length, num_processes=FLAGS.num_processes,
                num_output_files=FLAGS.num_output_files, blanks_separate_docs=FLAGS.blanks_separate_docs,
                do_lower_case=FLAGS.do_lower_case, strip_accents=FLAGS.strip_accents, seed=FLAGS.seed,
                on_bad_utf8=FLAGS.on_bad_utf8, original_segment_bug=FLAGS.original_segment_bug,
                progress=printer, log=lambda message: print(message, file=sys.stderr))
        finally:
            printer.finish()  # ends the progress line before any message
    print_summary(summary)
    return 0


def run(program: str = "convbert-build-dataset") -> None:
    """The console command (and build_pretraining_dataset.py with its own name)."""
    run_app(lambda argv: main(argv, program), define_flags, __doc__)


if __name__ == "__main__":
    run("python -m convbert_tf.cli.build_dataset")
