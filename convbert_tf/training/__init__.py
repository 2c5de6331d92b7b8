"""The training core shared by pretraining and fine-tuning.

`loop.py`: the replica step (tape, float16 loss scaling, update), the multi-step tf.function loop
and its XLA wrapping, the non-finite-loss policy and the throughput behind progress events.
`progress.py`: the progress events and the one line format. `checkpointing.py`: the checkpoint
manager, resuming, init-from, chief versus throwaway directories, vocab checks. `optimizer.py`:
AdamWeightDecay; `learning_rates.py`: the warmup x decay schedule and layerwise multipliers;
`loss_scale.py`: dynamic loss scaling. `distribute.py`: the distribution strategy and mixed-precision
choice, chief rules, a lost multi-worker peer as a clear error.

Imports the model-free modules of `convbert_tf` and, in `checkpointing.py`, the checkpoint
readers and the encoder; never `pretraining/` or `finetuning/`. Imported by `pretraining/`,
`finetuning/`, `ablation/`, `benchmarks/`, the cli and the quickstart.
"""
