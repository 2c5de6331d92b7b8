"""The layout of --output_dir, and the standalone commands each step amounts to."""

from __future__ import annotations

import dataclasses
import json
import os
import shlex

from convbert_tf.quickstart.settings import MODEL_NAME, TASK

# The repository root, where the entry scripts the printed commands name live.
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
STATE_FILE = "quickstart_state.json"
LOCK_FILE = ".quickstart.lock"
# What the quickstart writes at the top of --output_dir; --overwrite removes only these.
OWN_ENTRIES = ("corpus", "data", "predict.py", "predictions.json", "curves.png", "summary.json", STATE_FILE)


@dataclasses.dataclass(frozen=True)
class Paths:
    """The layout of --output_dir (absolute paths): `data` is a data_dir as the standalone commands use it."""

    root: str

    @property
    def corpus(self):
        return os.path.join(self.root, "corpus")

    @property
    def data(self):
        return os.path.join(self.root, "data")

    @property
    def vocab(self):
        return os.path.join(self.data, "vocab.txt")

    @property
    def records(self):
        return os.path.join(self.data, "pretrain_tfrecords")

    @property
    def model_dir(self):
        return os.path.join(self.data, "models", MODEL_NAME)

    @property
    def task_dir(self):
        return os.path.join(self.data, "finetuning_data", TASK)

    @property
    def trial_dir(self):
        return os.path.join(self.model_dir, "finetuning_models", f"{TASK}_model_1")

    @property
    def classifier(self):
        return os.path.join(self.trial_dir, "saved_model", TASK)

    @property
    def predict_script(self):
        return os.path.join(self.root, "predict.py")

    @property
    def predictions(self):
        return os.path.join(self.root, "predictions.json")

    @property
    def plot(self):
        return os.path.join(self.root, "curves.png")

    @property
    def summary(self):
        return os.path.join(self.root, "summary.json")

    @property
    def state(self):
        return os.path.join(self.root, STATE_FILE)


def display(path: str) -> str:
    """A path for the user: relative to the current directory when it lies below it, else absolute."""
    relative = os.path.relpath(path)
    return path if relative.startswith("..") else relative


def script(name: str) -> str:
    """A script of this repository as the user can type it from the current directory."""
    return display(os.path.join(ROOT, name))


def command(parts: list, **flag_values) -> str:
    words = [shlex.quote(str(p)) for p in parts]
    for name, value in flag_values.items():
        text = json.dumps(value) if isinstance(value, dict) else str(value)
        words.append(f"--{name}={shlex.quote(text)}")
    return " ".join(words)
