"""Timing and printing: interleaved repeats, medians, the report with its goal verdicts."""

import contextlib
import statistics
import time

class Report:
    """Prints lines as they come and keeps the goal verdicts for the summary."""

    def __init__(self, out):
        self.out = out
        self.goals = []

    def line(self, text=""):
        print(text, file=self.out, flush=True)

    @contextlib.contextmanager
    def section(self):
        """Prints how long a section took (building and tracing included)."""
        start = time.perf_counter()
        yield
        self.line(f"(section took {time.perf_counter() - start:.0f} s)")

    def goal(self, name, met, detail):
        self.goals.append((name, met, detail))
        self.line(f"GOAL {'met    ' if met else 'NOT met'} {name}: {detail}")


def median(values):
    return statistics.median(values)


def spread(values):
    """Half the min-max range relative to the median, as a +-% string."""
    m = median(values)
    return f"+-{50 * (max(values) - min(values)) / m:.0f}%" if m else ""


def interleaved(variants: dict, repeats: int, warmup: int = 2) -> dict:
    """{name: [seconds per call]}: each repeat calls every variant once, in turn."""
    for fn in variants.values():
        for _ in range(warmup):
            fn()
    times = {name: [] for name in variants}
    for _ in range(repeats):
        for name, fn in variants.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return times
