"""Pretrains ConvBERT with ELECTRA's replaced-token detection.

  python run_pretraining.py --data_dir=data --model_name=convbert_small \
      --hparams='{"model_size": "small"}'

Reads <data_dir>/pretrain_tfrecords/pretrain_data.tfrecord* and <data_dir>/vocab.txt (from
build_pretraining_dataset.py), writes checkpoints, config.json, hparams.json and TensorBoard
events to <data_dir>/models/<model_name>/, resuming from the latest checkpoint there. On
SIGTERM (preemption) it saves a checkpoint and exits with code 75; rerun to resume. Exit code
1 is a setup or data error (the message says what, e.g. the file and position of a corrupt
record; --bad_records=skip skips and counts such records) or an unexpected one (one line, the
traceback in a file in the run's directory), 2 a non-finite loss, 76 a worker of a multi-worker
run lost (restart all workers with the same command to resume). Every
hparam of the original configure_pretraining.py is accepted in --hparams (a JSON string or a
.json path) with the original names and defaults.
"""

import sys

from absl import app, flags, logging

FLAGS = flags.FLAGS
flags.DEFINE_string("data_dir", None, "Directory with pretrain_tfrecords/, vocab.txt and models/.")
flags.DEFINE_string("model_name", None, "Run name; outputs go to <data_dir>/models/<model_name>.")
flags.DEFINE_string("hparams", "{}", "JSON object or path to a .json file of pretraining hparams.")
flags.DEFINE_enum("strategy", "auto", ["auto", "one_device", "mirrored", "multi_worker_mirrored", "tpu"],
                  "Distribution: auto picks the TPU (with --tpu), all local GPUs, or the CPU.")
flags.DEFINE_string("tpu", None, "TPU name, 'local', or grpc:// address (implies --strategy=tpu under auto).")
flags.DEFINE_string("tpu_zone", None, "GCE zone of the TPU.")
flags.DEFINE_string("gcp_project", None, "GCP project of the TPU.")
flags.DEFINE_enum("mixed_precision", "auto", ["auto", "off", "bfloat16", "float16"],
                  "auto: bfloat16 on TPU, float16 with loss scaling on GPU, off on CPU.")
flags.DEFINE_bool("jit_compile", False, "Compile each train step with XLA.")
flags.DEFINE_float("collective_timeout_s", 600.0,
                   "multi_worker_mirrored only: fail the run when an all-reduce waits longer than this "
                   "for a worker that is alive but stuck (dead or frozen workers are noticed in about "
                   "10 s anyway). Must exceed the first step's compilation and the chief's checkpoint "
                   "writes; 0 disables.")
flags.DEFINE_string("init_checkpoint", None,
                    "Start from this checkpoint (original-release pretraining checkpoint or ours) when "
                    "model_dir has none.")
flags.DEFINE_enum("bad_records", None, ["fail", "skip"],
                  "A TFRecord that cannot be read or parsed: fail (the default: stop, naming the file and "
                  "record) or skip (leave it out and count it). Same as \"bad_records\" in --hparams.")
flags.mark_flags_as_required(["data_dir", "model_name"])


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments {argv[1:]}")
    logging.set_verbosity(logging.WARNING)
    from convbert_tf.cli_errors import exit_on_error

    with exit_on_error("run_pretraining.py", "pretraining", f"--data_dir {FLAGS.data_dir}",
                       also_known=(ValueError,)) as operation:
        from convbert_tf.distribute import get_strategy, set_mixed_precision
        from convbert_tf.pretraining import run as trainer
        from convbert_tf.pretraining.hparams import resolve_hparams
        from convbert_tf.run_guard import PREEMPTED_EXIT_CODE

        hp = resolve_hparams(FLAGS.hparams, data_dir=FLAGS.data_dir, model_name=FLAGS.model_name,
                             init_checkpoint=FLAGS.init_checkpoint, bad_records=FLAGS.bad_records, tpu_name=FLAGS.tpu,
                             tpu_zone=FLAGS.tpu_zone, gcp_project=FLAGS.gcp_project)
        operation.action = "pretraining eval" if hp.do_eval else "pretraining"
        operation.source = f"records {hp.eval_tfrecords or hp.pretrain_tfrecords}"
        operation.traceback_dir = hp.model_dir
        strategy = get_strategy(FLAGS.strategy, FLAGS.tpu, FLAGS.tpu_zone, FLAGS.gcp_project,
                                collective_timeout_s=FLAGS.collective_timeout_s)
        set_mixed_precision(FLAGS.mixed_precision, strategy)
        if hp.do_eval:
            trainer.evaluate(hp, strategy)
        elif trainer.train(hp, strategy, jit_compile=FLAGS.jit_compile).get("preempted"):
            sys.exit(PREEMPTED_EXIT_CODE)


if __name__ == "__main__":
    app.run(main)
