"""Benchmarks of ConvBERT against a same-size BERT built from the same code (see README.md).

`run.py` is the entry (`python -m benchmarks.run`); `options.py` what to run, `machine.py` the
machine probes, `timing.py` interleaved timing and the report, `workloads.py` the data and the
models measured, `sections/` one module per section, `goals.py` the verdicts. `backends/` is the
train step on any Keras backend and device (`run.py --backend=...`, see its docstring), with
`gpu_run.sh` the prepared GPU run. `memory_flat.py` is a separate check (`python -m
benchmarks.memory_flat`), `projections.py` a prototype (the hidden state's projections as one
matmul). Imports convbert_tf; nothing in the
package imports benchmarks.
"""
