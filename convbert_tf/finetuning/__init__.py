"""Fine-tuning: data, tasks, the run.

examples.py (example and feature types, DataError, shared readers), tasks/ (a Task class per kind of
task and the registry), qa/ (extractive QA machinery the QA tasks share), scorers.py (classification,
regression and chunk metrics), serving.py and export.py (a task's SavedModel and its signatures),
outputs.py (results over trials), hparams.py, trainer.py (train/predict over feature arrays on the
shared loop) and run.py (`run_finetuning`: trials, resume, scoring, outputs, exports).

May import the model side (config, encoder, layers, models, checkpoints), data/, training/ and io;
imported by the cli, the quickstart and the ablation, never by the model side.
"""
