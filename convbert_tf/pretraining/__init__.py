"""Pretraining with ELECTRA's replaced-token detection.

hparams.py (the original's hparams, resolved in its order), masking.py (dynamic masking),
records.py (the record format and bad-record handling), input_pipeline.py (the tf.data pipeline),
components.py (`Pretraining`: models, optimizer, checkpoint and compiled steps of a run) and run.py
(`train`, `evaluate`, the end-of-run exports).

May import the model side (config, encoder, layers, models, checkpoints), data/, training/ and io;
imported by the cli, the quickstart and the ablation, never by the model side.
"""
