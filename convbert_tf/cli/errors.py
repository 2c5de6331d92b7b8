"""How the entry points end on an exception: a known error prints its message and exits with its
code; any other is reported by a last-resort handler in one line naming the operation and its
input, with the full traceback written to a file, and exit code 1.

The known errors are the ones whose message says what was wrong and what to do (a config key,
a data file and line, a checkpoint). They are named here by class, not imported: a module that
is not loaded cannot have raised its error, and a script need not load every module of the
package (fine-tuning's tasks, the dataset builder) to report its own failure.

Imported by the entry points (convbert_tf.cli's commands, the `__main__` modules, benchmarks, the
quickstart); library modules raise their errors and never exit.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import sys
import tempfile
import time
import traceback

from absl import app

from convbert_tf.training.distribute import WORKER_LOST_EXIT_CODE
from convbert_tf.io import atomic_write_text

USER_ERROR_EXIT_CODE = 1
NON_FINITE_EXIT_CODE = 2
# The exit code of each known error, by class name: the package's own errors (defined in any of its
# modules, so the table survives a module moving) and two built-in ones. A subclass matches its
# base class's entry.
KNOWN_ERRORS = {
    "ConfigError": USER_ERROR_EXIT_CODE,  # convbert_tf.config
    "CheckpointError": USER_ERROR_EXIT_CODE,  # the checkpoint readers and writers
    "VocabError": USER_ERROR_EXIT_CODE,  # convbert_tf.data.tokenization
    "DatasetBuildError": USER_ERROR_EXIT_CODE,  # convbert_tf.data.pretraining_dataset
    "ExportError": USER_ERROR_EXIT_CODE,  # the SavedModel export
    "DataError": USER_ERROR_EXIT_CODE,  # fine-tuning task data
    "BadRecordError": USER_ERROR_EXIT_CODE,  # convbert_tf.pretraining.records
    "WorkerLostError": WORKER_LOST_EXIT_CODE,  # convbert_tf.training.distribute
}
BUILTIN_ERRORS = {FileExistsError: USER_ERROR_EXIT_CODE, FloatingPointError: NON_FINITE_EXIT_CODE}
# Lines of a TensorFlow error message that locate the failing op rather than say what failed.
_TF_LOCATION_LINES = ("Graph execution error", "Detected at node", "File ", "[[", "The error could be from")


def known_exit_code(error: BaseException, also_known: tuple = ()) -> int | None:
    """The exit code of a known error (or of an `also_known` class: 1); None for any other."""
    for cls in type(error).__mro__:
        if cls.__module__.split(".")[0] == "convbert_tf" and cls.__name__ in KNOWN_ERRORS:
            return KNOWN_ERRORS[cls.__name__]
    for cls, code in BUILTIN_ERRORS.items():
        if isinstance(error, cls):
            return code
    return USER_ERROR_EXIT_CODE if also_known and isinstance(error, also_known) else None


@dataclasses.dataclass
class Operation:
    """What an entry point is doing, for the line that reports an unexpected error; an entry
    point refines it as it learns more (the run directory once its flags are resolved).

    Attributes:
        program: the script ("run_pretraining.py").
        action: what it does ("pretraining").
        source: the input it works on ("records data/pretrain_tfrecords/*").
        traceback_dir: where the traceback file goes (the run's directory); None or a directory
            that cannot take it: the system temp directory.
    """

    program: str
    action: str
    source: str
    traceback_dir: str | None = None


def one_line(error: BaseException, limit: int = 300) -> str:
    """The error's message on one line: what failed, without TensorFlow's op location lines."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    kept = [line for line in lines if not line.startswith(_TF_LOCATION_LINES)] or lines
    text = re.sub(r"\s*\[Op:[^\]]*\]", "", " ".join(kept)).strip()
    return text[:limit] + ("..." if len(text) > limit else "") if text else "(no message)"


def write_traceback(error: BaseException, operation: Operation) -> str:
    """Writes the command, the operation and the full traceback to a new file in
    operation.traceback_dir (else the temp directory); returns its path.

    Raises:
        OSError: when neither directory takes the file.
    """
    stem = re.sub(r"\W+", "_", operation.program.removesuffix(".py"))
    name = f"{stem}-traceback-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.txt"
    text = (f"command: {' '.join(sys.argv)}\noperation: {operation.action} ({operation.source})\n\n"
            + "".join(traceback.format_exception(error)))
    directories = [d for d in (operation.traceback_dir, tempfile.gettempdir()) if d and os.path.isdir(d)]
    for directory in directories:
        try:
            return atomic_write_text(os.path.join(directory, name), text)
        except OSError as e:
            failure = e
    raise failure if directories else OSError(f"no directory for {name}")


def report_unexpected(error: BaseException, operation: Operation) -> int:
    """The last resort: one line on stderr naming the operation, its input, the error and where
    its traceback was written. Returns the exit code, 1."""
    try:
        where = f"the full traceback is in {write_traceback(error, operation)}"
    except OSError as e:
        where = f"the traceback could not be written ({e})"
    print(f"{operation.program}: error: {operation.action} ({operation.source}) failed with "
          f"{type(error).__name__}: {one_line(error)}; {where}", file=sys.stderr, flush=True)
    return USER_ERROR_EXIT_CODE


@contextlib.contextmanager
def exit_on_error(program: str, action: str, source: str, traceback_dir: str | None = None,
                  also_known: tuple = ()):
    """Runs an entry point's body: a known error (or an `also_known` one) prints
    `<program>: error: <message>` and exits with its code; any other exception goes to
    `report_unexpected` and exits 1. absl's UsageError, SystemExit and KeyboardInterrupt pass.

    Yields:
        The `Operation`, for the body to refine.
    """
    operation = Operation(program, action, source, traceback_dir)
    try:
        yield operation
    except app.UsageError:
        raise
    except Exception as error:  # the last resort
        code = known_exit_code(error, also_known)
        if code is None:
            code = report_unexpected(error, operation)
        else:
            print(f"{program}: error: {error}", file=sys.stderr, flush=True)
        sys.exit(code)
