"""Extractive question answering, the machinery the QA tasks (`tasks.squad`, `tasks.mrqa`) share.

reading.py: the checks and counts of one question, whatever its source format.
features.py: word pieces with character offsets, doc-stride spans, one model row per span.
predictions.py: span scores to answers, n-best lists, null odds, and the prediction files.
windows.py, serving.py: the same featurization and span choice as graph ops, for the SavedModel.

Imported by `convbert_tf.finetuning.tasks`; imports only `finetuning.examples` and `convbert_tf.io`
(serving and windows only TensorFlow and each other).
"""
