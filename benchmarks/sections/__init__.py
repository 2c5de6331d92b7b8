"""The benchmark's sections, one module each: layer (the attention layer), window_sum, fusions
(an encoder block with and without its fused ops), optimizer, sizes (train steps and
inference per size), serving (SavedModel latency), pipeline (the input pipeline) and precision.

Each section prints its table and RATIO lines through a `timing.Report` and returns the figures
`goals.py` judges. Imported by benchmarks/run.py only.
"""
