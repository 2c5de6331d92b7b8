"""Builds ConvBERT pretraining TFRecords from a directory of text files (see convbert_tf/data/).

Example:
  python build_pretraining_dataset.py --corpus_dir=corpus/ --output_dir=pretrain_tfrecords/ \
      --vocab_file=vocab.txt --num_processes=4

Exit code 1: a bad input (the message names the file, line or flag), or an unexpected error (one
line; the traceback is written to a file in the temp directory).
"""
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow is imported

from absl import app
from absl import flags

from convbert_tf.cli_errors import exit_on_error
from convbert_tf.data import pretraining_dataset

flags.DEFINE_string("corpus_dir", None, "Directory of UTF-8 text files, one sentence/paragraph per line.")
flags.DEFINE_string("output_dir", None, "Where pretrain_data.tfrecord-{i}-of-{N} are written.")
flags.DEFINE_string("vocab_file", None, "WordPiece vocab file. Default: <output_dir>/vocab.txt.")
flags.DEFINE_integer(
    "vocab_size", None, "If set and --vocab_file does not exist, learn a vocab of about this size "
    "from the corpus and write it to --vocab_file.")
flags.DEFINE_integer("max_seq_length", 128, "Tokens per example.")
flags.DEFINE_integer("num_processes", 1, "Parallel jobs.")
flags.DEFINE_integer("num_output_files", 1000, "Number N of output files (at least --num_processes).")
flags.DEFINE_bool(
    "blanks_separate_docs", False, "Blank lines end documents (else only the end of a file does). "
    "A real boolean: --blanks_separate_docs=false is false.")
flags.DEFINE_bool("do_lower_case", True, "Lower-case the text.")
flags.DEFINE_bool(
    "strip_accents", True, "With --do_lower_case, strip accents (--nostrip_accents keeps them).")
flags.DEFINE_integer("seed", 0, "Seed of the per-job random generators.")
flags.DEFINE_enum(
    "on_bad_utf8", "fail", list(pretraining_dataset.ON_BAD_UTF8_CHOICES),
    "fail: stop with an error naming the file and line; skip: skip such lines and count them.")
flags.DEFINE_bool(
    "original_segment_bug", False, "Assign segments with the original release's buggy condition "
    "(segment B only holds text that precedes A).")
flags.mark_flags_as_required(["corpus_dir", "output_dir"])

FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    printer = pretraining_dataset.ProgressPrinter(sys.stderr)
    with exit_on_error("build_pretraining_dataset.py", "building pretraining records",
                       f"--corpus_dir {FLAGS.corpus_dir}"):
        try:
            summary = pretraining_dataset.build_pretraining_dataset(
                FLAGS.corpus_dir,
                FLAGS.output_dir,
                FLAGS.vocab_file,
                vocab_size=FLAGS.vocab_size,
                max_seq_length=FLAGS.max_seq_length,
                num_processes=FLAGS.num_processes,
                num_output_files=FLAGS.num_output_files,
                blanks_separate_docs=FLAGS.blanks_separate_docs,
                do_lower_case=FLAGS.do_lower_case,
                strip_accents=FLAGS.strip_accents,
                seed=FLAGS.seed,
                on_bad_utf8=FLAGS.on_bad_utf8,
                original_segment_bug=FLAGS.original_segment_bug,
                progress=printer,
                log=lambda message: print(message, file=sys.stderr),
            )
        finally:
            printer.finish()  # ends the progress line before any message
    stats = summary.stats
    learned = ", learned from the corpus" if summary.vocab_learned else ""
    print(f"files:            {stats.files}")
    print(f"documents:        {stats.documents}")
    print(f"examples:         {stats.examples}")
    print(f"tokens:           {stats.tokens} (non-padding positions, [CLS]/[SEP] included)")
    print(f"truncated tokens: {stats.truncated_tokens}")
    first = f", the first at {stats.first_skipped_line}" if stats.skipped_lines else ""
    print(f"skipped lines:    {stats.skipped_lines} (invalid UTF-8{first})")
    print(f"vocab:            {summary.vocab_file} ({summary.vocab_size} tokens{learned})")
    output_dir = os.path.dirname(summary.output_files[0])
    print(f"output:           {len(summary.output_files)} files in {output_dir}")
    return 0


if __name__ == "__main__":
    app.run(main)
