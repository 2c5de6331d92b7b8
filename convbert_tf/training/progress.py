"""Progress events of a training run, and the one line format they are printed in.

A loop makes a `ProgressEvent` after each compiled call and hands it to `report(out, event)`. A
plain stream gets the line `format_line(event)`; an object with a `progress(event)` method (the
quickstart's progress bar) gets the event itself, so nobody parses printed lines back.
"""

import dataclasses


@dataclasses.dataclass(frozen=True)
class ProgressEvent:
    """One progress report.

    losses: shown names and values in order, e.g. {"gen": 3.1, "disc": 0.4} or {"loss": 0.7}.
    loss_note: printed after the losses (fine-tuning: "per example").
    rate, unit: throughput, "tok/s" or "examples/s".
    eta_s: seconds left at the current rate.
    counters: integers shown last when non-empty, e.g. {"skipped": 2, "bad records": 1}.
    """

    step: int
    total_steps: int
    losses: dict
    rate: float
    unit: str
    eta_s: float
    loss_note: str = ""
    counters: dict = dataclasses.field(default_factory=dict)


_RATE_DECIMALS = {"tok/s": 0, "examples/s": 1}


def format_eta(seconds: float) -> str:
    """h:mm:ss, never negative."""
    seconds = int(max(seconds, 0))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def format_line(event: ProgressEvent) -> str:
    """`step 40/100 | gen 3.1416 | disc 0.2718 | 12,345 tok/s | ETA 0:01:02 | skipped 1`."""
    parts = [f"step {event.step}/{event.total_steps}"]
    parts += [f"{name} {value:.4f}" for name, value in event.losses.items()]
    if event.loss_note:
        parts[-1] += f" {event.loss_note}"
    decimals = _RATE_DECIMALS.get(event.unit, 1)
    parts.append(f"{event.rate:,.{decimals}f} {event.unit}")
    parts.append(f"ETA {format_eta(event.eta_s)}")
    parts += [f"{name} {count}" for name, count in event.counters.items()]
    return " | ".join(parts)


def report(out, event: ProgressEvent) -> None:
    """Gives `event` to `out.progress` where `out` has one, else prints its line to `out`."""
    handler = getattr(out, "progress", None)
    if callable(handler):
        handler(event)
    else:
        print(format_line(event), file=out, flush=True)
