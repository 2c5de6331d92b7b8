"""Runs every entry point, one after the other in this process, on an input that fails in a way
none of them expects, for tests/cli/test_errors.py; prints one JSON line per entry point.

  python tests/entry_point_failures.py <work dir>

convert and export read a checkpoint whose index file is garbage (TensorFlow raises a bare
OpError). The others get the failure planted in the library call they make (the patches live
only in this process): a DataLossError as TensorFlow words it, with its op location lines, or
a RuntimeError from the disk check of the quickstart. Each line holds the entry point, its exit
code, its stderr and where its model directory is (where the traceback file should be).
"""

import contextlib
import io
import json
import os
import runpy
import shutil
import sys
import warnings

from absl import flags

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import tensorflow as tf  # noqa: E402

from convbert_tf.config import ConvBertConfig  # noqa: E402
from tests.pretraining_data import VOCAB  # noqa: E402

TF_MESSAGE = ("Graph execution error:\n\nDetected at node IteratorGetNext defined at (most recent call last):\n"
              "  File \"run_pretraining.py\", line 80, in <module>\n\ncorrupted record at 12\n"
              "\t [[{{node IteratorGetNext}}]] [Op:__inference_train_loop_1234]")


def data_loss(*args, **kwargs):
    raise tf.errors.DataLossError(None, None, TF_MESSAGE)


def full_disk_check(*args, **kwargs):
    raise RuntimeError("statvfs returned nonsense")


def run(script, argv, patches=(), module=None):
    """Runs one entry point as __main__ with `patches` ((object, name, replacement)) applied;
    returns (exit code, stderr). The flags it defined are removed afterwards."""
    defined = set(flags.FLAGS)
    saved = [(target, name, getattr(target, name)) for target, name, _ in patches]
    for target, name, replacement in patches:
        setattr(target, name, replacement)
    sys.argv = [script] + argv
    stderr = io.StringIO()
    try:
        with contextlib.redirect_stderr(stderr):
            if module:
                runpy.run_module(module, run_name="__main__", alter_sys=True)
            else:
                runpy.run_path(os.path.join(ROOT, script), run_name="__main__")
        code = 0
    except SystemExit as e:
        code = e.code
    finally:
        for target, name, original in saved:
            setattr(target, name, original)
        for name in set(flags.FLAGS) - defined:
            delattr(flags.FLAGS, name)
        flags.FLAGS.unparse_flags()
    return code, stderr.getvalue()


def main(work):
    data_dir = os.path.join(work, "data")
    model_dir = os.path.join(data_dir, "models", "tiny")
    os.makedirs(model_dir)
    with open(os.path.join(data_dir, "vocab.txt"), "w") as f:
        f.write("\n".join(VOCAB) + "\n")
    garbage = os.path.join(work, "garbage")
    os.makedirs(garbage)
    with open(os.path.join(garbage, "ckpt-1.index"), "wb") as f:
        f.write(b"not an sstable")
    ConvBertConfig.from_preset("small").replace(vocab_size=len(VOCAB)).to_json_file(
        os.path.join(garbage, "config.json"))

    from convbert_tf.data import pretraining_dataset
    from convbert_tf.finetuning import run as runner
    from convbert_tf.pretraining import run as trainer

    cases = {
        "build_pretraining_dataset.py": dict(
            argv=[f"--corpus_dir={work}", f"--output_dir={work}/records"],
            patches=[(pretraining_dataset, "build_pretraining_dataset", data_loss)]),
        "run_pretraining.py": dict(argv=[f"--data_dir={data_dir}", "--model_name=tiny"],
                                   patches=[(trainer, "train", data_loss)], model_dir=model_dir),
        "run_finetuning.py": dict(argv=[f"--data_dir={data_dir}", "--model_name=tiny"],
                                  patches=[(runner, "run_finetuning", data_loss)], model_dir=model_dir),
        "convbert_tf.convert": dict(argv=["--config=small", f"--input={garbage}/ckpt-1", f"--output={work}/out"],
                                    module="convbert_tf.convert"),
        "convbert_tf.export": dict(argv=[f"--checkpoint={garbage}/ckpt-1", f"--vocab_file={data_dir}/vocab.txt",
                                         f"--export_dir={work}/exported"], module="convbert_tf.export"),
        "quickstart.py": dict(argv=[f"--output_dir={work}/quickstart"], patches=[(shutil, "disk_usage",
                                                                                  full_disk_check)]),
    }
    warnings.simplefilter("ignore", RuntimeWarning)  # runpy's, on running an imported module as __main__
    for name, case in cases.items():
        code, stderr = run(name, case["argv"], case.get("patches", ()), case.get("module"))
        print(json.dumps({"entry_point": name, "code": code, "stderr": stderr, "model_dir": case.get("model_dir")}),
              flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
