"""The train step on any Keras 3 backend and device, and Hugging Face's torch ConvBERT beside it.

`python -m benchmarks.run --backend=jax|torch|tensorflow --device=cpu|gpu` lands in `cli.py`:
it checks the flags and starts one `worker.py` process per backend with KERAS_BACKEND set
(Keras reads it once, at import), and with `--compare_hf` one `hf_worker.py` process (torch
and transformers, no Keras). Each worker prints its table and a last `RESULT {json}` line;
`cli.py` prints the figures of all of them side by side (`figures.py`: tokens/s, MFU, the
ConvBERT/BERT time and FLOP ratios). `keras_step.py` is the encoder + MLM head + AdamW step
on jax (jax.jit of a stateless step) and torch (eager and torch.compile); the tensorflow worker
times the production train loop of benchmarks/workloads.py instead. `peak.py` times a large
matmul per backend, the peak the MFU divides by.

Only the tensorflow worker imports TensorFlow; cli.py, figures.py and hf_worker.py never do.
"""
