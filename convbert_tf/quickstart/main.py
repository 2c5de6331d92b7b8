"""The quickstart's entry point: settings, the output folder, the six steps, and the exit code."""

from __future__ import annotations

import contextlib
import errno
import os
import sys
import time

from absl import logging

from convbert_tf.config import ConfigError
from convbert_tf.quickstart.output_dir import claimed_output_dir
from convbert_tf.quickstart.paths import Paths, display
from convbert_tf.quickstart.run import Quickstart
from convbert_tf.quickstart.settings import QuickstartError, make_settings
from convbert_tf.quickstart.summary import print_summary

PROGRAM = "quickstart.py"


def _error(message: str) -> int:
    print(f"{PROGRAM}: error: {message}", file=sys.stderr)
    return 1


def _library_errors() -> tuple:
    """The errors a run can end with that are the user's to fix (config, data, checkpoints, disk, NaN)."""
    import tensorflow as tf
    from convbert_tf.checkpoints import CheckpointError
    from convbert_tf.finetuning.examples import DataError

    return (ConfigError, CheckpointError, DataError, FloatingPointError, tf.errors.OpError)


def _report_unexpected(error: Exception, paths: Paths) -> int:
    """The last resort: one line naming the run, the traceback written to a file; returns 1."""
    from convbert_tf.cli.errors import Operation, report_unexpected

    return report_unexpected(error, Operation(PROGRAM, "the quickstart", f"--output_dir {paths.root}"))


def _run_steps(paths: Paths, settings, state: dict) -> dict | int:
    """The summary of the run, or the exit code of a run that stopped on an error."""
    try:
        return Quickstart(paths, settings, state).run()
    except KeyboardInterrupt:
        print(f"\ninterrupted; rerun the same command to resume the run in {paths.root}", file=sys.stderr)
        return 130
    except QuickstartError as e:
        return _error(str(e))
    except OSError as e:
        if e.errno == errno.ENOSPC:
            return _error(f"the disk of {paths.root} is full ({e}); free some space and rerun the same command: "
                          "the run resumes where it stopped")
        return _error(f"{e}; rerun the same command to resume")
    except Exception as e:
        if not isinstance(e, _library_errors()):
            return _report_unexpected(e, paths)
        _error(f"{type(e).__name__}: {e}")
        if "No space left" in str(e):
            print(f"the disk of {paths.root} is full: free some space and rerun the same command to resume",
                  file=sys.stderr)
        return 2 if isinstance(e, FloatingPointError) else 1


def main(output_dir: str, quick: bool, pretrain_steps: int | None, finetune_epochs: float | None,
         overwrite: bool, resume: bool) -> int:
    """Runs the quickstart into `output_dir`; returns the exit code."""
    from convbert_tf.run_guard import PREEMPTED_EXIT_CODE

    logging.set_verbosity(logging.WARNING)
    started = time.perf_counter()
    paths = Paths(os.path.abspath(output_dir))
    with contextlib.ExitStack() as held:
        try:
            settings = make_settings(quick, pretrain_steps, finetune_epochs)
            state = held.enter_context(claimed_output_dir(paths, settings, overwrite, resume))
        except QuickstartError as e:
            return _error(str(e))
        except Exception as e:
            return _report_unexpected(e, paths)
        print(f"ConvBERT quickstart into {display(paths.root)}/ ({'--quick, ' if settings.quick else ''}"
              f"{settings.pretrain_steps} pretraining steps, {settings.finetune_epochs:g} fine-tuning epochs)")
        summary = _run_steps(paths, settings, state)
    if isinstance(summary, int):
        return summary
    if summary.get("preempted"):
        return PREEMPTED_EXIT_CODE
    print_summary(summary, paths, time.perf_counter() - started)
    return 0
