"""Benchmarks of ConvBERT against a same-size BERT built from the same code (see README.md).

`run.py` is the entry (`python -m benchmarks.run`); `options.py` what to run, `machine.py` the
machine probes, `timing.py` interleaved timing and the report, `workloads.py` the data and the
models measured, `sections/` one module per section, `goals.py` the verdicts. `memory_flat.py`
is a separate check (`python -m benchmarks.memory_flat`). Imports convbert_tf; nothing in the
package imports benchmarks.
"""
