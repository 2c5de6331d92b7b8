"""Pretrains ConvBERT with ELECTRA's replaced-token detection.

  python run_pretraining.py --data_dir=data --model_name=convbert_small \
      --hparams='{"model_size": "small"}'
  convbert-pretrain --data_dir=data --model_name=convbert_small   # once installed with pip

Reads <data_dir>/pretrain_tfrecords/pretrain_data.tfrecord* and <data_dir>/vocab.txt (from
build_pretraining_dataset.py), writes checkpoints, config.json, hparams.json and TensorBoard
events to <data_dir>/models/<model_name>/, resuming from the latest checkpoint there. On
SIGTERM (preemption) it saves a checkpoint and exits with code 75; rerun to resume. Exit code
1 is a setup or data error (the message says what, e.g. the file and position of a corrupt
record; --bad_records=skip skips and counts such records) or an unexpected one (one line, the
traceback in a file in the run's directory), 2 a non-finite loss, 76 a worker of a multi-worker
run lost (restart all workers with the same command to resume). Every hparam of the original
configure_pretraining.py is accepted in --hparams (a JSON string or a .json path) with the
original names and defaults.
"""

import sys

from absl import flags, logging

from convbert_tf.cli.errors import exit_on_error
from convbert_tf.cli.flags import define_run_flags, no_extra_arguments, run_app, strategy_from_flags

FLAGS = flags.FLAGS


def define_flags(flag_values=flags.FLAGS) -> None:
    flags.DEFINE_string("data_dir", None, "Directory with pretrain_tfrecords/, vocab.txt and models/.",
                        flag_values=flag_values)
    flags.DEFINE_string("model_name", None, "Run name; outputs go to <data_dir>/models/<model_name>.",
                        flag_values=flag_values)
    flags.DEFINE_string("hparams", "{}", "JSON object or path to a .json file of pretraining hparams.",
                        flag_values=flag_values)
    define_run_flags(flag_values, tpu_help="TPU name, 'local', or grpc:// address (implies --strategy=tpu under "
                     "auto).", collective_timeout_also=" and the chief's checkpoint writes")
    flags.DEFINE_string("init_checkpoint", None,
                        "Start from this checkpoint (original-release pretraining checkpoint or ours) when "
                        "model_dir has none.", flag_values=flag_values)
    flags.DEFINE_enum("bad_records", None, ["fail", "skip"],
                      "A TFRecord that cannot be read or parsed: fail (the default: stop, naming the file and "
                      "record) or skip (leave it out and count it). Same as \"bad_records\" in --hparams.",
                      flag_values=flag_values)
    flags.mark_flags_as_required(["data_dir", "model_name"], flag_values=flag_values)


def main(argv, program: str = "run_pretraining.py"):
    no_extra_arguments(argv)
    logging.set_verbosity(logging.WARNING)
    with exit_on_error(program, "pretraining", f"--data_dir {FLAGS.data_dir}",
                       also_known=(ValueError,)) as operation:
        from convbert_tf.pretraining import run as trainer
        from convbert_tf.pretraining.hparams import resolve_hparams
        from convbert_tf.run_guard import PREEMPTED_EXIT_CODE

        hp = resolve_hparams(FLAGS.hparams, data_dir=FLAGS.data_dir, model_name=FLAGS.model_name,
                             init_checkpoint=FLAGS.init_checkpoint, bad_records=FLAGS.bad_records, tpu_name=FLAGS.tpu,
                             tpu_zone=FLAGS.tpu_zone, gcp_project=FLAGS.gcp_project)
        operation.action = "pretraining eval" if hp.do_eval else "pretraining"
        operation.source = f"records {hp.eval_tfrecords or hp.pretrain_tfrecords}"
        operation.traceback_dir = hp.model_dir
        strategy = strategy_from_flags(FLAGS)
        if hp.do_eval:
            trainer.evaluate(hp, strategy)
        elif trainer.train(hp, strategy, jit_compile=FLAGS.jit_compile).get("preempted"):
            sys.exit(PREEMPTED_EXIT_CODE)


def run(program: str = "convbert-pretrain") -> None:
    """The console command (and run_pretraining.py with its own name)."""
    run_app(lambda argv: main(argv, program), define_flags, __doc__)


if __name__ == "__main__":
    run("python -m convbert_tf.cli.pretrain")
