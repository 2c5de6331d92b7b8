"""Text to pretraining data: the tokenizer (tokenization.py), WordPiece vocab learning (vocab.py),
example packing (example_builder.py) and the TFRecord builder (pretraining_dataset.py, with
corpus_files.py, packing.py and parallel_jobs.py).

Imports nothing of convbert_tf outside this folder except io.py; imported by the entry script
build_pretraining_dataset.py, the pretraining and fine-tuning input code, the quickstart and the
ablation.
"""
