"""Draws a run's pretraining and fine-tuning loss curves into a PNG, from its TensorBoard events.

  python plot_curves.py --run_dir=data/models/convbert_small --output=curves.png
  python plot_curves.py --run_dir=quickstart_output --output=quickstart_output/curves.png

--run_dir may be a pretraining model_dir (<data_dir>/models/<model_name>), a data_dir (every
run under it), or a quickstart folder. Panels: the generator's MLM loss and the discriminator's
loss of each pretraining run, and the loss of each fine-tuning trial under it.
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # the package imports TensorFlow

from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_string("run_dir", None, "A model_dir, a data_dir or a quickstart folder; searched recursively.")
flags.DEFINE_string("output", "curves.png", "The PNG to write.")
flags.DEFINE_string("title", None, "Figure title. Default: the run_dir.")
flags.mark_flags_as_required(["run_dir"])


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments {argv[1:]}")
    from convbert_tf import plotting

    try:
        curves = plotting.collect_curves(FLAGS.run_dir)
        path = plotting.plot_curves(curves, FLAGS.output, title=FLAGS.title or FLAGS.run_dir)
    except plotting.NoCurvesError as e:
        print(f"plot_curves.py: error: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"plot_curves.py: error: cannot write {FLAGS.output}: {e.strerror}", file=sys.stderr)
        return 1
    for kind in ("pretraining", "finetuning"):
        for curve in curves[kind]:
            print(f"{kind:12s} {curve.run}: {curve.tag} {curve.first:.4f} -> {curve.last:.4f} "
                  f"(steps {curve.steps[0]}..{curve.steps[-1]})")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    app.run(main)
