"""Fine-tunes a pretrained ConvBERT on GLUE, SQuAD, MRQA or CoNLL-2000 chunking.

  python run_finetuning.py --data_dir=data --model_name=convbert_small \
      --hparams='{"model_size": "small", "task_names": ["cola"]}'
  convbert-finetune --data_dir=data --model_name=convbert_small ...   # once installed with pip

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

from absl import flags, logging

from convbert_tf.cli.errors import exit_on_error
from convbert_tf.cli.flags import define_run_flags, no_extra_arguments, run_app, strategy_from_flags

FLAGS = flags.FLAGS


def define_flags(flag_values=flags.FLAGS) -> None:
    flags.DEFINE_string("data_dir", None, "Directory with finetuning_data/, vocab.txt and models/.",
                        flag_values=flag_values)
    flags.DEFINE_string("model_name", None, "The pretrained model's name (<data_dir>/models/<model_name>).",
                        flag_values=flag_values)
    flags.DEFINE_string("hparams", "{}", "JSON object or path to a .json file of fine-tuning hparams.",
                        flag_values=flag_values)
    define_run_flags(flag_values)
    flags.mark_flags_as_required(["data_dir", "model_name"], flag_values=flag_values)


def main(argv, program: str = "run_finetuning.py"):
    no_extra_arguments(argv)
    logging.set_verbosity(logging.WARNING)
    with exit_on_error(program, "fine-tuning", f"--data_dir {FLAGS.data_dir}") as operation:
        from convbert_tf.training.distribute import worker_lost_error
        from convbert_tf.finetuning.hparams import resolve_finetuning_hparams
        from convbert_tf.finetuning.run import run_finetuning

        hp = resolve_finetuning_hparams(FLAGS.hparams, data_dir=FLAGS.data_dir, model_name=FLAGS.model_name,
                                        tpu_name=FLAGS.tpu, tpu_zone=FLAGS.tpu_zone, gcp_project=FLAGS.gcp_project)
        operation.source = f"tasks {', '.join(hp.task_names)} in {hp.data_dir}"
        operation.traceback_dir = hp.model_dir
        strategy = strategy_from_flags(FLAGS)
        try:
            run_finetuning(hp, strategy, jit_compile=FLAGS.jit_compile)
        except Exception as e:  # a collective's error when a worker is lost becomes WorkerLostError
            lost = worker_lost_error(e, strategy, "each trial resumes from its last checkpoint")
            if lost is None:
                raise
            raise lost from None


def run(program: str = "convbert-finetune") -> None:
    """The console command (and run_finetuning.py with its own name)."""
    run_app(lambda argv: main(argv, program), define_flags, __doc__)


if __name__ == "__main__":
    run("python -m convbert_tf.cli.finetune")
