"""The one flag convention: entry-point modules define nothing on import, and the shared run flags
keep their names, defaults and help in both training commands."""

from absl import flags

from convbert_tf import __main__ as demo
from convbert_tf.cli import build_dataset, finetune, plot, pretrain

SHARED = {"strategy": "auto", "tpu": None, "tpu_zone": None, "gcp_project": None, "mixed_precision": "auto",
          "jit_compile": False, "collective_timeout_s": 600.0}
COLLECTIVE_HELP = ("multi_worker_mirrored only: fail the run when an all-reduce waits longer than this for a "
                   "worker that is alive but stuck (dead or frozen workers are noticed in about 10 s anyway). "
                   "Must exceed the first step's compilation{}; 0 disables.")


def defined(module) -> flags.FlagValues:
    flag_values = flags.FlagValues()
    module.define_flags(flag_values)
    return flag_values


def test_importing_the_commands_defines_no_flag_and_each_defines_its_own():
    for name in ("data_dir", "strategy", "corpus_dir", "run_dir", "seq_length"):
        assert name not in flags.FLAGS
    assert set(defined(build_dataset)) >= {"corpus_dir", "output_dir", "on_bad_utf8", "original_segment_bug"}
    assert set(defined(plot)) == {"run_dir", "output", "title"}
    assert set(defined(demo)) == {"config", "checkpoint", "batch_size", "seq_length"}


def test_both_training_commands_share_the_run_flags_unchanged():
    pretraining, finetuning = defined(pretrain), defined(finetune)
    assert set(pretraining) == set(SHARED) | {"data_dir", "model_name", "hparams", "init_checkpoint", "bad_records"}
    assert set(finetuning) == set(SHARED) | {"data_dir", "model_name", "hparams"}
    for flag_values in (pretraining, finetuning):
        assert {name: flag_values[name].default for name in SHARED} == SHARED
        assert flag_values["strategy"].parser.enum_values == ["auto", "one_device", "mirrored", "multi_worker_mirrored", "tpu"]
        assert flag_values["mixed_precision"].parser.enum_values == ["auto", "off", "bfloat16", "float16"]
        assert flag_values["jit_compile"].help == "Compile each train step with XLA."
    assert pretraining["tpu"].help == "TPU name, 'local', or grpc:// address (implies --strategy=tpu under auto)."
    assert finetuning["tpu"].help == "TPU name, 'local', or grpc:// address."
    assert pretraining["collective_timeout_s"].help == COLLECTIVE_HELP.format(" and the chief's checkpoint writes")
    assert finetuning["collective_timeout_s"].help == COLLECTIVE_HELP.format("")


def test_required_flags_are_declared():
    for module in (pretrain, finetune):
        flag_values = defined(module)
        flag_values(["prog", "--data_dir=d", "--model_name=m"])
        assert (flag_values.data_dir, flag_values.model_name) == ("d", "m")
        validators = [v for name in ("data_dir", "model_name") for v in flag_values[name].validators]
        assert len(validators) == 2
