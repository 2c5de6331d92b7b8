"""The quickstart demo as a package: a tiny ConvBERT's whole life in one offline command.

settings.py (sizes of a run, the hparams it hands the library), paths.py (the output folder's
layout and the equivalent commands), output_dir.py (refuse, resume or start; built on run_guard),
corpus.py (step 1's text from Python's own docs), opinion_task.py (step 4's built-in task),
progress_view.py (the progress bar), steps.py (step headers), run.py (the six steps),
summary.py (the closing table), predict.py (step 5's standalone serving program, copied into the
output folder and run there by path: it imports only tensorflow and tensorflow_text), main.py
(the entry point behind the top-level quickstart.py).

Imported only by the top-level quickstart.py and the tests; it imports the rest of convbert_tf,
never the other way round.
"""
