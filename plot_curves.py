"""Draws a run's loss curves into a PNG from its TensorBoard events: see convbert_tf/cli/plot.py.

  python plot_curves.py --run_dir=data/models/convbert_small --output=curves.png
"""

from convbert_tf.cli import plot

if __name__ == "__main__":
    plot.run("plot_curves.py")
