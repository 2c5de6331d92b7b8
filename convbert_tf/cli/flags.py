"""The one flag convention of the package's entry points, and the flags they share.

Every entry point defines its flags in a `define_flags(flag_values=flags.FLAGS)` function and
starts with `run_app(main, define_flags)`: importing an entry-point module defines no flag, so
several can be imported into one process (tests, the quickstart), and a required flag is
declared with `flags.mark_flags_as_required` there, not checked by hand in `main`.

`define_run_flags` defines the distribution, TPU, precision and XLA flags of run_pretraining.py
and run_finetuning.py; `strategy_from_flags` turns them into a strategy with its dtype policy.
Imported only by entry points.
"""

from __future__ import annotations

import sys

from absl import app, flags

from convbert_tf.training.distribute import DEFAULT_COLLECTIVE_TIMEOUT_S, MIXED_PRECISION, STRATEGIES

TPU_HELP = "TPU name, 'local', or grpc:// address."
COLLECTIVE_TIMEOUT_HELP = (
    "multi_worker_mirrored only: fail the run when an all-reduce waits longer than this for a worker that "
    "is alive but stuck (dead or frozen workers are noticed in about 10 s anyway). Must exceed the first "
    "step's compilation{also}; 0 disables.")


def define_run_flags(flag_values=flags.FLAGS, *, tpu_help: str = TPU_HELP, collective_timeout_also: str = "",
                     strategies=STRATEGIES) -> None:
    """--strategy, --tpu, --tpu_zone, --gcp_project, --mixed_precision, --jit_compile and
    --collective_timeout_s (when multi_worker_mirrored is among `strategies`).

    `tpu_help` and `collective_timeout_also` (more things the timeout must exceed) let an entry
    point say what these flags mean for it.
    """
    flags.DEFINE_enum("strategy", "auto", list(strategies),
                      "Distribution: auto picks the TPU (with --tpu), all local GPUs, or the CPU.",
                      flag_values=flag_values)
    flags.DEFINE_string("tpu", None, tpu_help, flag_values=flag_values)
    flags.DEFINE_string("tpu_zone", None, "GCE zone of the TPU.", flag_values=flag_values)
    flags.DEFINE_string("gcp_project", None, "GCP project of the TPU.", flag_values=flag_values)
    flags.DEFINE_enum("mixed_precision", "auto", list(MIXED_PRECISION),
                      "auto: bfloat16 on TPU, float16 with loss scaling on GPU, off on CPU.",
                      flag_values=flag_values)
    flags.DEFINE_bool("jit_compile", False, "Compile each train step with XLA.", flag_values=flag_values)
    if "multi_worker_mirrored" in strategies:
        flags.DEFINE_float("collective_timeout_s", DEFAULT_COLLECTIVE_TIMEOUT_S,
                           COLLECTIVE_TIMEOUT_HELP.format(also=collective_timeout_also), flag_values=flag_values)


def strategy_from_flags(flag_values=flags.FLAGS):
    """The tf.distribute strategy the run flags ask for, with the Keras dtype policy set for it."""
    from convbert_tf.training.distribute import get_strategy, set_mixed_precision

    strategy = get_strategy(flag_values.strategy, flag_values.tpu, flag_values.tpu_zone, flag_values.gcp_project,
                            collective_timeout_s=flag_values.collective_timeout_s)
    set_mixed_precision(flag_values.mixed_precision, strategy)
    return strategy


def no_extra_arguments(argv) -> None:
    """Refuses positional arguments (absl passes them to main after the program name)."""
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments {argv[1:]}")


def run_app(main, define_flags, doc: str | None = None, argv=None) -> None:
    """Defines the entry point's flags on flags.FLAGS, then runs `main` under absl (parses argv,
    exits with main's return value).

    `doc` (the command module's docstring) becomes the text of --help, and the flags it defines
    are listed there: absl shows the `__main__` module's docstring and flags, which would be a thin
    script's or, for a console command, pip's wrapper's.
    """
    if doc:
        sys.modules["__main__"].__doc__ = doc
    before = set(flags.FLAGS)
    define_flags(flags.FLAGS)
    main_module = sys.argv[0] if argv is None else argv[0]  # the name absl gives __main__'s flags
    for name in sorted(set(flags.FLAGS) - before):
        flags.FLAGS.register_key_flag_for_module(main_module, flags.FLAGS[name])
    app.run(main, argv=argv)
