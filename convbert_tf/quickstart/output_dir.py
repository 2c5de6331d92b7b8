"""What to do with --output_dir, decided before any long work: refuse, resume or start.

The lock, the write probe and the free-space check are run_guard's (`model_dir_lock`,
`check_model_dir_writable`); what a killed run left under a temporary name (`io.TEMPORARY_GLOB`)
is removed once the lock is held.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time

from convbert_tf import io, run_guard
from convbert_tf.config import ConfigError
from convbert_tf.quickstart.paths import LOCK_FILE, OWN_ENTRIES, STATE_FILE, Paths
from convbert_tf.quickstart.settings import QuickstartError, Settings, settings_dict

_FLAG_KEYS = ("quick", "pretrain_steps", "finetune_epochs")  # what the user chose, named first


def read_state(paths: Paths) -> dict:
    try:
        with open(paths.state) as f:
            state = json.load(f)
    except (OSError, ValueError) as e:
        raise QuickstartError(f"cannot read {paths.state} ({e}); it marks {paths.root} as a quickstart run. "
                              "Pass --overwrite to start that folder again, or choose another --output_dir") from None
    if not isinstance(state, dict) or "settings" not in state:
        raise QuickstartError(f"{paths.state} is not a quickstart state file; choose another --output_dir")
    return state


def check_usable(root: str, required_mb: int) -> None:
    """`root` takes a write and has `required_mb` free (run_guard's probe), as a QuickstartError."""
    try:
        run_guard.check_model_dir_writable(root, required_mb * 2 ** 20)
    except ConfigError as e:
        raise QuickstartError(f"{e}. For the quickstart that directory is --output_dir: choose a writable "
                              "--output_dir with enough free space") from None


def _refuse_other_files(root: str) -> None:
    if os.path.exists(root) and not os.path.isdir(root):
        raise QuickstartError(f"--output_dir {root} exists and is not a folder")
    if not os.path.isdir(root):
        return
    entries = [name for name in os.listdir(root) if name != LOCK_FILE]
    if entries and STATE_FILE not in entries:
        raise QuickstartError(
            f"--output_dir {root} already holds other files ({', '.join(sorted(entries)[:3])}"
            f"{', ...' if len(entries) > 3 else ''}) and no quickstart run; the quickstart never mixes its "
            "files with others (and --overwrite never deletes what it did not write): choose a new or "
            "empty --output_dir")


def _make(root: str) -> None:
    try:
        os.makedirs(root, exist_ok=True)
    except OSError as e:
        raise QuickstartError(f"cannot create the output folder {root} ({e.strerror}); choose a writable "
                              "--output_dir") from None


@contextlib.contextmanager
def claimed_output_dir(paths: Paths, settings: Settings, overwrite: bool, resume: bool, log=print):
    """Holds --output_dir for the run and yields the state to run with.

    New or empty folder: a fresh run. A finished quickstart run: refused unless --overwrite. An
    unfinished one: resumed under equal settings (else refused), or restarted with --overwrite.
    Any other non-empty folder: refused, --overwrite or not, before anything is written. The
    folder must take a write and have `settings.required_free_mb` free (once more after an
    --overwrite has removed the old run).
    """
    _refuse_other_files(paths.root)
    created = not os.path.exists(paths.root)
    _make(paths.root)
    held = contextlib.ExitStack()
    try:
        check_usable(paths.root, 0)
        try:
            held.enter_context(run_guard.model_dir_lock(paths.root, LOCK_FILE,
                                                        elsewhere="choose another --output_dir"))
        except ConfigError as e:  # another quickstart holds the folder
            raise QuickstartError(str(e)) from None
        run_guard.remove_interrupted_writes(paths.root, (io.TEMPORARY_GLOB,))
        state = _decide(paths, settings, overwrite, resume, log)
    except BaseException as e:
        held.close()
        if created and isinstance(e, QuickstartError):  # a refusal leaves nothing behind
            with contextlib.suppress(OSError):
                os.rmdir(paths.root)
        raise
    with held:
        yield state


def _remove_own_entries(paths: Paths) -> None:
    for name in OWN_ENTRIES:  # the state file last: an interrupted removal stays a quickstart folder
        path = os.path.join(paths.root, name)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        elif os.path.lexists(path):
            os.remove(path)


def _refuse_to_resume(paths: Paths, state: dict, wanted: dict, resume: bool) -> None:
    root = paths.root
    if state.get("finished"):
        raise QuickstartError(
            f"{root} already holds a finished quickstart run (finished {state['finished']}; see {paths.summary}). "
            "Nothing was changed. Pass --overwrite to delete it and run again, or choose another --output_dir")
    if state["settings"] != wanted:
        differ = sorted((k for k in wanted if state["settings"].get(k) != wanted[k]),
                        key=lambda k: (k not in _FLAG_KEYS, k))
        raise QuickstartError(
            f"{root} holds an unfinished quickstart run with other settings ("
            + ", ".join(f"{k} {state['settings'].get(k)!r} there vs {wanted[k]!r} now" for k in differ[:3])
            + (", ..." if len(differ) > 3 else "") + "); resuming it would mix two runs' files. Rerun with "
            "its flags to resume it, pass --overwrite to start again, or choose another --output_dir")
    if not resume:
        raise QuickstartError(
            f"{root} holds an unfinished quickstart run (steps done: {', '.join(state['steps']) or 'none'}); "
            "--noresume refuses it. Drop --noresume to continue it, or pass --overwrite to start again")


def _decide(paths: Paths, settings: Settings, overwrite: bool, resume: bool, log) -> dict:
    """The state to run with (see `claimed_output_dir`); raises QuickstartError to refuse."""
    state = read_state(paths) if os.path.exists(paths.state) else None
    wanted = settings_dict(settings)
    if state is not None and overwrite:
        log(f"--overwrite: removing the {'finished' if state.get('finished') else 'unfinished'} quickstart run "
            f"in {paths.root}")
        _remove_own_entries(paths)
        state = None
    elif state is not None:
        _refuse_to_resume(paths, state, wanted, resume)
        log(f"{paths.root} holds an unfinished quickstart run (steps done: {', '.join(state['steps']) or 'none'}); "
            "resuming it")
    check_usable(paths.root, settings.required_free_mb)
    if state is None:
        state = {"format": 1, "settings": wanted, "started": time.strftime("%Y-%m-%d %H:%M:%S"), "finished": None,
                 "steps": {}}
        io.atomic_write_json(paths.state, state)
    return state
