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
work. The steps live in the package convbert_tf/quickstart/; this file holds the flags.
"""

from convbert_tf.quickstart import __main__ as quickstart

if __name__ == "__main__":
    quickstart.run()
