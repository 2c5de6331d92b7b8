"""ConvBERT's ablation on your own data: `python -m convbert_tf.ablation` pretrains each variant
(BERT's self-attention, + bottleneck, + span convolution, + grouped FFN, or your own) with each
seed under identical conditions, fine-tunes them, and reports the differences.

- `variants.py`: the paper's ladder and user variants (config fields over the preset).
- `settings.py`: the --model_size presets, the settings of an ablation, each run's plan and hparams.
- `budget.py`: FLOPs per pretraining step (`convbert_tf.flops`), steps for a FLOP budget, eval points.
- `init.py`: shared initial weights within a seed, the digest of the batches a run reads.
- `runs.py`: one run (variant x seed) in stages a rerun skips or resumes: init, pretraining with
  held-out evals, fine-tuning, result record.
- `data.py`: pretraining records from a corpus; the fine-tuning tasks present.
- `report.py`, `plots.py`: the table (mean ± std, paired per-seed differences) and the PNGs.
- `experiment.py`: the whole ablation and the command's exit codes; `__main__.py` only the flags.
"""
