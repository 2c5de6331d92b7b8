"""The command-line side of the package: what every entry point shares, and the entry points.

- `quiet`: TensorFlow's C++ start-up chatter kept off the terminal (`CONVBERT_TF_VERBOSE=1` shows it);
  `convbert_tf/__init__.py` calls it before anything imports TensorFlow.
- `errors`: exit codes and the last-resort handler every entry point runs its body in.
- `flags`: the one flag convention (`define_flags(flag_values)` functions, nothing defined on
  import), the shared distribution / precision / XLA flags, and `run_app`.
- `pretrain`, `finetune`, `build_dataset`, `plot`: the bodies of run_pretraining.py,
  run_finetuning.py, build_pretraining_dataset.py and plot_curves.py, and of the console commands
  convbert-pretrain, convbert-finetune, convbert-build-dataset and convbert-plot.
- `commands`: the console commands of entry points kept elsewhere (convert, export, ablation,
  `python -m convbert_tf`, the quickstart). pyproject.toml lists every console command.

Only entry points (the top-level scripts, `__main__` modules, benchmarks, the quickstart) import
`flags` and the command modules; `quiet` and `errors` may be imported by any module. This package's
`__init__` imports nothing, so `convbert_tf/__init__.py` can load `quiet` before TensorFlow.
"""
