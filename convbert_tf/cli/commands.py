"""Console commands for the entry points that live in other packages (installed by pyproject.toml).

Each runs its module's `main` under absl, defining the module's flags first when the module keeps
them in a `define_flags` function (modules that define them on import have done so by then).
"""

import importlib

from convbert_tf.cli.flags import run_app


def _run_module(name: str) -> None:
    module = importlib.import_module(name)
    define_flags = getattr(module, "define_flags", lambda flag_values: None)
    run_app(module.main, define_flags, module.__doc__)


def convert() -> None:
    """convbert-convert: python -m convbert_tf.convert."""
    _run_module("convbert_tf.convert")


def export() -> None:
    """convbert-export: python -m convbert_tf.export."""
    _run_module("convbert_tf.export")


def ablation() -> None:
    """convbert-ablation: python -m convbert_tf.ablation."""
    _run_module("convbert_tf.ablation.__main__")


def demo() -> None:
    """convbert-demo: python -m convbert_tf."""
    _run_module("convbert_tf.__main__")


def quickstart() -> None:
    """convbert-quickstart: quickstart.py, from the quickstart package."""
    _run_module("convbert_tf.quickstart.__main__")
