"""ConvBERT's ablation on your data: each variant pretrained with each seed, fine-tuned, reported.

  python -m convbert_tf.ablation --corpus_dir=corpus/ --output_dir=ablation/ --seeds=0,1,2
  python -m convbert_tf.ablation --data_dir=data --output_dir=ablation/ --model_size=small \
      --flops_budget=bert:100000 --finetune_tasks=all --finetune_trials=5

Writes <output_dir>/report.md (also printed), report.json, loss_vs_flops.png and dev_scores.png,
and each run into <output_dir>/runs/<variant>/seed-<seed>/. Rerunning skips finished runs and
resumes unfinished ones; new variants or seeds run only what is new. Exit codes: 0; 1 a setup or
data error; 2 a non-finite loss; 75 SIGTERM stopped a run after a checkpoint (rerun to resume).
"""

import sys

from absl import app, flags, logging

from convbert_tf.ablation.variants import DEFAULT_VARIANTS
from convbert_tf.training.distribute import MIXED_PRECISION, STRATEGIES

FLAGS = flags.FLAGS
flags.DEFINE_string("corpus_dir", None, "Text files (one paragraph per line, one document per file): a vocab "
                    "and records are built into <output_dir>/data, the last of --num_data_files held out.")
flags.DEFINE_string("data_dir", None, "Instead of --corpus_dir: a data_dir of build_pretraining_dataset.py "
                    "(vocab.txt, pretrain_tfrecords/ of at least two files: the last is held out).")
flags.DEFINE_string("output_dir", None, "Receives the runs, report.md, report.json and the plots.")
flags.DEFINE_string("variants", DEFAULT_VARIANTS, "Ladder steps separated by commas, or a JSON object "
                    "{name: null (a ladder step) or {config fields over the preset}}.")
flags.DEFINE_string("model_size", "tiny", "A preset (tiny, small, medium-small, base) or a JSON object of "
                    "pretraining hparams over the preset its \"model_size\" names (default tiny).")
flags.DEFINE_integer("num_train_steps", None, "Pretraining steps of every variant (default: the preset's).")
flags.DEFINE_string("flops_budget", None, "Instead of --num_train_steps: pretraining FLOPs per run, a number "
                    "(3e15) or <variant>:<steps> (bert:100000); each variant trains the steps that fit.")
flags.DEFINE_list("seeds", ["0"], "Seeds; each runs every variant.")
flags.DEFINE_integer("num_eval_points", 4, "Held-out evaluations per run, spread evenly over its steps.")
flags.DEFINE_list("finetune_tasks", [], "Fine-tuning tasks scored on dev after pretraining, or 'all' (every "
                  "task under <finetune_data_dir>/finetuning_data/).")
flags.DEFINE_string("finetune_data_dir", None, "The data_dir holding finetuning_data/ (default: the data dir).")
flags.DEFINE_integer("finetune_trials", 1, "Fine-tuning trials per task and run; the median is reported.")
flags.DEFINE_string("finetune_hparams", "{}", "JSON object of fine-tuning hparams over the preset's.")
flags.DEFINE_integer("vocab_size", 4000, "With --corpus_dir: the WordPiece vocab size to learn.")
flags.DEFINE_integer("num_data_files", 5, "With --corpus_dir: record files to write; the last is held out.")
flags.DEFINE_enum("strategy", "auto", [s for s in STRATEGIES if s != "multi_worker_mirrored"],
                  "Distribution: auto picks the TPU (with --tpu), all local GPUs, or the CPU.")
flags.DEFINE_string("tpu", None, "TPU name, 'local', or grpc:// address (implies --strategy=tpu under auto).")
flags.DEFINE_string("tpu_zone", None, "GCE zone of the TPU.")
flags.DEFINE_string("gcp_project", None, "GCP project of the TPU.")
flags.DEFINE_enum("mixed_precision", "auto", list(MIXED_PRECISION),
                  "auto: bfloat16 on TPU, float16 with loss scaling on GPU, off on CPU.")
flags.DEFINE_bool("jit_compile", False, "Compile each train step with XLA.")
flags.mark_flag_as_required("output_dir")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments {argv[1:]}")
    logging.set_verbosity(logging.WARNING)
    from convbert_tf.cli.errors import exit_on_error

    with exit_on_error("python -m convbert_tf.ablation", "ablation", f"--output_dir {FLAGS.output_dir}",
                       traceback_dir=FLAGS.output_dir, also_known=(ValueError,)):
        from convbert_tf.ablation.experiment import main as run

        code = run(
            output_dir=FLAGS.output_dir, corpus_dir=FLAGS.corpus_dir, data_dir=FLAGS.data_dir,
            variants=FLAGS.variants, model_size=FLAGS.model_size, num_train_steps=FLAGS.num_train_steps,
            flops_budget=FLAGS.flops_budget, seeds=FLAGS.seeds, num_eval_points=FLAGS.num_eval_points,
            finetune_tasks=FLAGS.finetune_tasks, finetune_data_dir=FLAGS.finetune_data_dir,
            finetune_hparams=FLAGS.finetune_hparams, finetune_trials=FLAGS.finetune_trials,
            vocab_size=FLAGS.vocab_size, num_data_files=FLAGS.num_data_files, jit_compile=FLAGS.jit_compile,
            strategy=FLAGS.strategy, tpu=FLAGS.tpu, tpu_zone=FLAGS.tpu_zone, gcp_project=FLAGS.gcp_project,
            mixed_precision=FLAGS.mixed_precision)
    sys.exit(code)


if __name__ == "__main__":
    app.run(main)
