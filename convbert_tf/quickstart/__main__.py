"""The whole life of a tiny ConvBERT in one offline command, in a few minutes on 2 CPU cores.

  python quickstart.py                               # writes quickstart_output/
  python quickstart.py --output_dir=runs/qs --pretrain_steps=600
  python quickstart.py --quick                       # the reduced run CI uses (a minute or two)

Six steps, each the library call behind an ordinary command (printed before the step runs, so
it can be rerun on other data):

  1/6 corpus        Python's own documentation (pydoc_data.topics, shipped with CPython): one
                    text file per topic, one prose paragraph per line.
  2/6 data          a WordPiece vocab learned from the corpus, and the pretraining TFRecords
                    (build_pretraining_dataset.py).
  3/6 pretraining   a tiny ConvBERT with ELECTRA's replaced-token detection (run_pretraining.py).
  4/6 fine-tuning   a built-in sentence classification task in the GLUE SST-2 layout
                    (run_finetuning.py); the rule that labels it is `opinion_label` of
                    convbert_tf/quickstart/opinion_task.py.
  5/6 serving       the exported SavedModel answers for a few sentences in a fresh process that
                    imports only tensorflow and tensorflow_text (<output_dir>/predict.py).
  6/6 plot          the pretraining and fine-tuning loss curves as a PNG (plot_curves.py).

Everything goes into --output_dir, with summary.json (steps, losses, dev score, paths) at the
end. A folder that holds a finished run is refused unless --overwrite; an unfinished one (the
command was interrupted) is resumed under the same settings; a folder of other files is never
written into. The output folder's writability and free space are checked before any long
work. The steps live in the package convbert_tf/quickstart/; convbert_tf/quickstart/__main__.py holds the flags.
"""

from absl import app


def define_flags(flag_values) -> None:
    """The quickstart's flags, on `flag_values`."""
    from absl import flags

    flags.DEFINE_string("output_dir", "quickstart_output", "The folder that receives every output of the run.",
                        flag_values=flag_values)
    flags.DEFINE_integer("pretrain_steps", None, "Pretraining steps. Default 300 (--quick: 40).",
                         flag_values=flag_values)
    flags.DEFINE_float("finetune_epochs", None, "Fine-tuning epochs over the built-in task. Default 3.",
                       flag_values=flag_values)
    flags.DEFINE_bool("quick", False, "A smaller model, shorter sequences, fewer steps and a smaller task: the "
                      "reduced run that CI checks.", flag_values=flag_values)
    flags.DEFINE_bool("overwrite", False, "Delete a quickstart run already in --output_dir (finished or not) and "
                      "start again. Files the quickstart did not write are never deleted.", flag_values=flag_values)
    flags.DEFINE_bool("resume", True, "Continue an unfinished quickstart run found in --output_dir (the same "
                      "settings are required). --noresume refuses it instead.", flag_values=flag_values)


def main(argv) -> int:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments {argv[1:]}")
    from absl import flags

    from convbert_tf.quickstart.main import main as run_quickstart

    f = flags.FLAGS
    return run_quickstart(f.output_dir, f.quick, f.pretrain_steps, f.finetune_epochs, f.overwrite, f.resume)


def run() -> None:
    """`python quickstart.py`, `python -m convbert_tf.quickstart` and the convbert-quickstart command."""
    from convbert_tf.cli.flags import run_app

    run_app(main, define_flags, __doc__)


if __name__ == "__main__":
    run()
