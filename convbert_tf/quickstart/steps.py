"""Numbered step headers, each with the standalone command the step amounts to."""

from __future__ import annotations

import time

STEP_NAMES = ("corpus", "data", "pretraining", "finetuning", "serving", "plot")


def format_took(seconds: float) -> str:
    """'3m07s'."""
    seconds = int(max(seconds, 0))
    return f"{seconds // 60}m{seconds % 60:02d}s"


class StepPrinter:
    """Prints `[n/6] title`, the commands, a note, and `done in ...` when the step ends."""

    def __init__(self, total: int = len(STEP_NAMES)):
        self.total = total
        self._step_started = time.perf_counter()

    def header(self, number: int, title: str, commands=(), note: str | None = None) -> None:
        print(f"\n[{number}/{self.total}] {title}", flush=True)
        for line in commands:
            print(f"    $ {line}")
        if note:
            print(f"    {note}")
        self._step_started = time.perf_counter()

    def skipped(self, number: int, title: str) -> None:
        print(f"\n[{number}/{self.total}] {title}: done in an earlier run, skipped", flush=True)

    def done(self, text: str = "") -> None:
        took = time.perf_counter() - self._step_started
        print(f"    done in {format_took(took)}{': ' + text if text else ''}", flush=True)
