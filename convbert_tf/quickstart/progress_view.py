"""The quickstart's progress bar: the `out=` it hands the training loops.

The loops report a `ProgressEvent` through `convbert_tf.training.progress.report(out, event)`,
which calls `ProgressView.progress(event)`; other lines they print arrive through `write`.
"""

from __future__ import annotations

import sys

from convbert_tf.training import progress


class ProgressView:
    """A progress bar on a terminal, the progress lines elsewhere; other lines pass through, indented.

    On a terminal the bar is one line rewritten in place, kept as a permanent line every tenth of
    the run so that the falling loss stays on screen; elsewhere (a log file, CI) each progress line
    is printed as it comes. `points` holds (step, {name: value}) of every progress report seen.
    """

    WIDTH = 24

    def __init__(self, keys, stream=None):
        self.keys = keys  # the losses shown in the bar, e.g. ("gen", "disc")
        self.stream = stream or sys.stdout
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.points = []
        self._pending = ""
        self._bar_open = False
        self._next_kept = 0

    def progress(self, event: progress.ProgressEvent) -> None:
        self._show(event.step, event.total_steps, dict(event.losses), progress.format_eta(event.eta_s),
                   progress.format_line(event))

    def write(self, text: str) -> int:
        self._pending += text
        while "\n" in self._pending:
            line, self._pending = self._pending.split("\n", 1)
            self._line(line)
        return len(text)

    def flush(self) -> None:
        self.stream.flush()

    def close(self) -> None:
        if self._pending:
            self._line(self._pending)
            self._pending = ""
        if self._bar_open:
            self.stream.write("\n")
            self._bar_open = False
        self.stream.flush()

    def _print(self, line: str) -> None:
        if self._bar_open:
            self.stream.write("\r\033[K")
            self._bar_open = False
        self.stream.write(f"    {line}\n")
        self.stream.flush()

    def _line(self, line: str) -> None:
        if line.strip():
            self._print(line.strip())

    def _show(self, step: int, total: int, losses: dict, eta: str, line: str) -> None:
        self.points.append((step, losses))
        if not self.tty:
            self._print(line)
            return
        first = self.points[0][1]
        done = int(self.WIDTH * step / max(total, 1))
        shown = "  ".join(f"{k} {losses[k]:.3f} (from {first.get(k, losses[k]):.3f})" for k in self.keys if k in losses)
        text = (f"    [{'#' * done}{'.' * (self.WIDTH - done)}] {step}/{total}  {shown}"
                + (f"  ETA {eta}" if eta and step < total else ""))
        keep = step >= total or step >= self._next_kept
        self.stream.write("\r" + text + "\033[K" + ("\n" if keep else ""))
        self._bar_open = not keep
        if keep:
            self._next_kept = step + max(1, total // 10)
        self.stream.flush()
