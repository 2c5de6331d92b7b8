"""Loss curves from a run's TensorBoard event files, drawn into a PNG (no TensorBoard needed).

What is read: every directory under the given folder that holds `events.out.tfevents.*` files
is one run. A pretraining run (`<model_dir>/train`, written by `run_pretraining.py`) is
recognized by its `mlm_loss` scalar and gives the generator's MLM loss and the discriminator's
loss; a fine-tuning trial (`<model_dir>/finetuning_models/<tasks>_model_<trial>/train`,
written by `run_finetuning.py`) by its `loss` scalar. Several event files in one directory (a
resumed run writes a new one) are merged by step; where two files hold the same step, the
newer file wins.

The event files are TFRecord-framed `Event` protos, parsed with tensorboard's protos (this
module itself needs neither TensorFlow nor a running TensorBoard). Record checksums are not
verified; a truncated last record (a file still being written) ends that file's reading.
"""

from __future__ import annotations

import dataclasses
import io as io_bytes
import os
import re
import struct
from typing import Iterator, Mapping, Sequence

import numpy as np

from convbert_tf import io

EVENT_FILE = re.compile(r"events\.out\.tfevents\..*")
PRETRAINING_TAGS = (("mlm_loss", "generator MLM loss"), ("disc_loss", "discriminator loss"))
FINETUNING_TAGS = (("loss", "fine-tuning loss"),)
_HEADER = struct.Struct("<QI")  # record length, masked CRC of the length
_FOOTER_BYTES = 4  # masked CRC of the data


class NoCurvesError(ValueError):
    """The folder holds no event files with losses; the message names the folder and what to pass."""


@dataclasses.dataclass(frozen=True)
class Curve:
    """One scalar series of one run: steps ascending, one value per step."""

    run: str  # the run's label, e.g. "models/convbert_small" or "sst_model_1"
    tag: str  # the scalar's name in the event files, e.g. "mlm_loss"
    steps: tuple
    values: tuple

    @property
    def first(self) -> float:
        return self.values[0]

    @property
    def last(self) -> float:
        return self.values[-1]


def read_records(path: str) -> Iterator[bytes]:
    """The records of one TFRecord file; stops quietly at a truncated last record."""
    with open(path, "rb") as f:
        while True:
            header = f.read(_HEADER.size)
            if len(header) < _HEADER.size:
                return
            length, _ = _HEADER.unpack(header)
            data = f.read(length)
            footer = f.read(_FOOTER_BYTES)
            if len(data) < length or len(footer) < _FOOTER_BYTES:
                return
            yield data


def _scalar(value) -> float | None:
    """The float of a summary value: TF1 `simple_value` or a TF2 rank-0 `tensor`; else None."""
    if value.HasField("simple_value"):
        return float(value.simple_value)
    if not value.HasField("tensor"):
        return None
    from tensorboard.util import tensor_util  # NumPy only, no TensorFlow

    try:
        array = tensor_util.make_ndarray(value.tensor)
    except (TypeError, ValueError):
        return None
    if array.shape != () or not np.issubdtype(array.dtype, np.number):
        return None
    return float(array)


def read_scalars(event_dir: str) -> dict[str, dict[int, float]]:
    """{tag: {step: value}} over every event file in `event_dir` (not its subdirectories).

    Files are read in name order (their names start with the creation time), so for a step
    present in several files the newest file's value is kept.
    """
    from tensorboard.compat.proto import event_pb2

    scalars: dict[str, dict[int, float]] = {}
    names = sorted(n for n in os.listdir(event_dir) if EVENT_FILE.fullmatch(n))
    for name in names:
        for record in read_records(os.path.join(event_dir, name)):
            event = event_pb2.Event.FromString(record)
            if not event.HasField("summary"):
                continue
            for value in event.summary.value:
                number = _scalar(value)
                if number is not None:
                    scalars.setdefault(value.tag, {})[int(event.step)] = number
    return scalars


def find_event_dirs(run_dir: str) -> list[str]:
    """Every directory under `run_dir` (itself included) holding event files, sorted; hidden ones skipped."""
    found = []
    for root, dirs, names in os.walk(run_dir):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        if any(EVENT_FILE.fullmatch(n) for n in names):
            found.append(root)
    return sorted(found)


def _run_label(event_dir: str, run_dir: str) -> str:
    """The trial or model directory's name: `<model_dir>/train` is labelled by `<model_dir>`."""
    directory = os.path.dirname(event_dir) if os.path.basename(event_dir) == "train" else event_dir
    if "finetuning_models" in os.path.normpath(directory).split(os.sep):
        return os.path.basename(directory)
    label = os.path.relpath(directory, run_dir)
    return os.path.basename(os.path.abspath(run_dir)) if label == "." else label


def _curve(label: str, tag: str, points: Mapping[int, float]) -> Curve:
    steps = sorted(points)
    return Curve(label, tag, tuple(steps), tuple(points[s] for s in steps))


def collect_curves(run_dir: str) -> dict[str, list[Curve]]:
    """The loss curves under `run_dir`: {"pretraining": [...], "finetuning": [...]}.

    Raises:
      NoCurvesError: `run_dir` is missing, or no event file under it holds a loss.
    """
    if not os.path.isdir(run_dir):
        raise NoCurvesError(f"{run_dir} is not a directory; pass a model_dir, a data_dir or a quickstart folder")
    curves: dict[str, list[Curve]] = {"pretraining": [], "finetuning": []}
    event_dirs = find_event_dirs(run_dir)
    for event_dir in event_dirs:
        scalars = read_scalars(event_dir)
        label = _run_label(event_dir, run_dir)
        if PRETRAINING_TAGS[0][0] in scalars:
            curves["pretraining"] += [_curve(label, tag, scalars[tag]) for tag, _ in PRETRAINING_TAGS if tag in scalars]
        elif FINETUNING_TAGS[0][0] in scalars:
            curves["finetuning"].append(_curve(label, FINETUNING_TAGS[0][0], scalars[FINETUNING_TAGS[0][0]]))
    if not curves["pretraining"] and not curves["finetuning"]:
        where = f"{len(event_dirs)} event folder(s) there hold no losses" if event_dirs else "no TensorBoard event files"
        raise NoCurvesError(
            f"nothing to plot under {run_dir}: {where}. Pass the folder of a run: a pretraining "
            "model_dir (<data_dir>/models/<model_name>, with train/ inside), its data_dir, or a quickstart folder")
    return curves


def plot_curves(curves: Mapping[str, Sequence[Curve]], output: str, title: str | None = None) -> str:
    """Draws one panel per loss (generator MLM, discriminator, fine-tuning) into a PNG at `output`.

    The PNG is written under a temporary name and renamed into place. Returns `output`.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    panels = []
    for tag, name in PRETRAINING_TAGS:
        series = [c for c in curves.get("pretraining", ()) if c.tag == tag]
        if series:
            panels.append((f"pretraining: {name}", series))
    if curves.get("finetuning"):
        panels.append(("fine-tuning: classifier loss", list(curves["finetuning"])))
    if not panels:
        raise NoCurvesError("no curves to plot")
    figure = Figure(figsize=(4.6 * len(panels), 3.8), dpi=110, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(1, len(panels), squeeze=False)[0]
    for ax, (panel_title, series) in zip(axes, panels):
        for curve in series:
            ax.plot(curve.steps, curve.values, marker="." if len(curve.steps) < 40 else None,
                    label=f"{curve.run}: {curve.first:.3g} -> {curve.last:.3g}")
        ax.set_title(panel_title, fontsize=10)
        ax.set_xlabel("step")
        ax.set_ylabel("loss")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    if title:
        figure.suptitle(title, fontsize=11)
    return save_png(figure, output)


def save_png(figure, output: str) -> str:
    """Writes a matplotlib figure as a PNG atomically (`convbert_tf.io`); creates the directory.
    Returns the path."""
    buffer = io_bytes.BytesIO()
    figure.savefig(buffer, format="png")
    return io.atomic_write_bytes(output, buffer.getvalue())
