"""Fine-tunes a pretrained ConvBERT on GLUE, SQuAD, MRQA or CoNLL-2000 chunking.

  python run_finetuning.py --data_dir=data --model_name=convbert_small \
      --hparams='{"model_size": "small", "task_names": ["cola"]}'

Reads <data_dir>/finetuning_data/<task>/ in the original layouts (or prepared
tensorflow-datasets with "tfds_data_dir"), starts from the pretrained checkpoint in
<data_dir>/models/<model_name> (ours or an original-release one; "init_checkpoint" overrides),
and writes to <data_dir>/models/<model_name>/: finetuning_models/<tasks>_model_<trial>/
(checkpoint, dev_predictions/, test_predictions/, saved_model/<task>/) and
results/<tasks>_results.{txt,json} with every trial and the median. Every hparam of the
original configure_finetuning.py is accepted in --hparams with the original names. Exit code 1
is a setup or data error, or an unexpected one (one line, the traceback in a file in
<data_dir>/models/<model_name>/), 2 a non-finite loss, 76 a worker of a multi-worker run lost
(restart all workers with the same command).
"""

from absl import app, flags, logging

FLAGS = flags.FLAGS
flags.DEFINE_string("data_dir", None, "Directory with finetuning_data/, vocab.txt and models/.")
flags.DEFINE_string("model_name", None, "The pretrained model's name (<data_dir>/models/<model_name>).")
flags.DEFINE_string("hparams", "{}", "JSON object or path to a .json file of fine-tuning hparams.")
flags.DEFINE_enum("strategy", "auto", ["auto", "one_device", "mirrored", "multi_worker_mirrored", "tpu"],
                  "Distribution: auto picks the TPU (with --tpu), all local GPUs, or the CPU.")
flags.DEFINE_string("tpu", None, "TPU name, 'local', or grpc:// address.")
flags.DEFINE_string("tpu_zone", None, "GCE zone of the TPU.")
flags.DEFINE_string("gcp_project", None, "GCP project of the TPU.")
flags.DEFINE_enum("mixed_precision", "auto", ["auto", "off", "bfloat16", "float16"],
                  "auto: bfloat16 on TPU, float16 with loss scaling on GPU, off on CPU.")
flags.DEFINE_bool("jit_compile", False, "Compile each train step with XLA.")
flags.DEFINE_float("collective_timeout_s", 600.0,
                   "multi_worker_mirrored only: fail the run when an all-reduce waits longer than this "
                   "for a worker that is alive but stuck (dead or frozen workers are noticed in about "
                   "10 s anyway). Must exceed the first step's compilation; 0 disables.")
flags.mark_flags_as_required(["data_dir", "model_name"])


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments {argv[1:]}")
    logging.set_verbosity(logging.WARNING)
    from convbert_tf.cli_errors import exit_on_error

    with exit_on_error("run_finetuning.py", "fine-tuning", f"--data_dir {FLAGS.data_dir}") as operation:
        from convbert_tf.distribute import get_strategy, set_mixed_precision, worker_lost_error
        from convbert_tf.finetuning.hparams import resolve_finetuning_hparams
        from convbert_tf.finetuning.run import run_finetuning

        hp = resolve_finetuning_hparams(FLAGS.hparams, data_dir=FLAGS.data_dir, model_name=FLAGS.model_name,
                                        tpu_name=FLAGS.tpu, tpu_zone=FLAGS.tpu_zone, gcp_project=FLAGS.gcp_project)
        operation.source = f"tasks {', '.join(hp.task_names)} in {hp.data_dir}"
        operation.traceback_dir = hp.model_dir
        strategy = get_strategy(FLAGS.strategy, FLAGS.tpu, FLAGS.tpu_zone, FLAGS.gcp_project,
                                collective_timeout_s=FLAGS.collective_timeout_s)
        set_mixed_precision(FLAGS.mixed_precision, strategy)
        try:
            run_finetuning(hp, strategy, jit_compile=FLAGS.jit_compile)
        except Exception as e:  # a collective's error when a worker is lost becomes WorkerLostError
            lost = worker_lost_error(e, strategy, "each trial resumes from its last checkpoint")
            if lost is None:
                raise
            raise lost from None


if __name__ == "__main__":
    app.run(main)
