"""convbert_tf.plotting writes its PNG through convbert_tf.io: whole or not at all, also remotely.
(Reading event files and the plot_curves.py command are tested in tests/test_quickstart.py.)"""

import os

import matplotlib
import pytest
import tensorflow as tf

from convbert_tf import plotting

matplotlib.use("Agg")


def figure():
    from matplotlib import pyplot

    fig, ax = pyplot.subplots()
    ax.plot([1, 2], [3, 1])
    return fig


def test_the_png_lands_whole_locally_and_remotely(tmp_path):
    local = plotting.save_png(figure(), str(tmp_path / "plots" / "c.png"))
    data = open(local, "rb").read()
    assert data.startswith(b"\x89PNG") and os.listdir(tmp_path / "plots") == ["c.png"]
    remote = plotting.save_png(figure(), "ram://convbert-plot-test/c.png")
    with tf.io.gfile.GFile(remote, "rb") as f:
        assert f.read().startswith(b"\x89PNG")
    assert tf.io.gfile.listdir("ram://convbert-plot-test") == ["c.png"]


def test_a_failed_save_leaves_nothing(tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken)
    with pytest.raises(OSError):
        plotting.save_png(figure(), str(tmp_path / "c.png"))
    assert os.listdir(tmp_path) == []
