"""The training core shared by pretraining and fine-tuning.

`progress.py`: the progress events and the one line format. (The step loop, checkpointing and the
optimizer move here too.) May import `convbert_tf`'s model-free modules; imported by `pretraining/`,
`finetuning/`, `ablation/` and the quickstart.
"""
