"""Draws a run's pretraining and fine-tuning loss curves into a PNG, from its TensorBoard events.

  python plot_curves.py --run_dir=data/models/convbert_small --output=curves.png
  python plot_curves.py --run_dir=quickstart_output --output=quickstart_output/curves.png
  convbert-plot --run_dir=data/models/convbert_small   # once installed with pip

--run_dir may be a pretraining model_dir (<data_dir>/models/<model_name>), a data_dir (every
run under it), or a quickstart folder. Panels: the generator's MLM loss and the discriminator's
loss of each pretraining run, and the loss of each fine-tuning trial under it. Exit code 1: no
curves found or the PNG cannot be written (one line), or an unexpected error (one line; the
traceback is written to a file in the temp directory).
"""

import sys

from absl import flags

from convbert_tf.cli.errors import exit_on_error
from convbert_tf.cli.flags import no_extra_arguments, run_app

FLAGS = flags.FLAGS


def define_flags(flag_values=flags.FLAGS) -> None:
    flags.DEFINE_string("run_dir", None, "A model_dir, a data_dir or a quickstart folder; searched recursively.",
                        flag_values=flag_values)
    flags.DEFINE_string("output", "curves.png", "The PNG to write.", flag_values=flag_values)
    flags.DEFINE_string("title", None, "Figure title. Default: the run_dir.", flag_values=flag_values)
    flags.mark_flags_as_required(["run_dir"], flag_values=flag_values)


def main(argv, program: str = "plot_curves.py"):
    no_extra_arguments(argv)
    from convbert_tf import plotting

    with exit_on_error(program, "plotting loss curves", f"--run_dir {FLAGS.run_dir}"):
        try:
            curves = plotting.collect_curves(FLAGS.run_dir)
            path = plotting.plot_curves(curves, FLAGS.output, title=FLAGS.title or FLAGS.run_dir)
        except plotting.NoCurvesError as e:
            print(f"{program}: error: {e}", file=sys.stderr)
            return 1
        except OSError as e:
            print(f"{program}: error: cannot write {FLAGS.output}: {e.strerror}", file=sys.stderr)
            return 1
    for kind in ("pretraining", "finetuning"):
        for curve in curves[kind]:
            print(f"{kind:12s} {curve.run}: {curve.tag} {curve.first:.4f} -> {curve.last:.4f} "
                  f"(steps {curve.steps[0]}..{curve.steps[-1]})")
    print(f"wrote {path}")
    return 0


def run(program: str = "convbert-plot") -> None:
    """The console command (and plot_curves.py with its own name)."""
    run_app(lambda argv: main(argv, program), define_flags, __doc__)


if __name__ == "__main__":
    run("python -m convbert_tf.cli.plot")
