"""Fine-tuning end to end on tiny data: training, dev scores, outputs, errors, and serving exports."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from convbert_tf.checkpoints import CheckpointError
from convbert_tf.config import ConfigError
from convbert_tf.finetuning.hparams import resolve_finetuning_hparams
from convbert_tf.finetuning.run import run_finetuning
from finetuning_data import HPARAMS, VOCAB, write_chunk, write_pretrained, write_squad, write_sst
from tf1_checkpoint import write_tf1_checkpoint
import numpy_reference as ref

CPU = tf.distribute.OneDeviceStrategy("/cpu:0")


def hparams(data_dir, **changes):
    return resolve_finetuning_hparams(dict(HPARAMS, **changes), data_dir=str(data_dir), model_name="tiny")


@pytest.fixture(scope="module")
def sst_run(tmp_path_factory):
    data_dir = str(tmp_path_factory.mktemp("finetune"))
    write_pretrained(data_dir)
    write_sst(data_dir)
    import io
    out = io.StringIO()
    summary = run_finetuning(hparams(data_dir, task_names=["sst"], num_train_epochs=6.0), CPU, out=out)
    return data_dir, summary, out.getvalue()


def test_separable_task_reaches_high_dev_accuracy(sst_run):
    data_dir, summary, log = sst_run
    assert summary["sst"]["median"]["accuracy"] >= 90.0, log
    trial_dir = os.path.join(data_dir, "models", "tiny", "finetuning_models", "sst_model_1")
    results = json.load(open(os.path.join(data_dir, "models", "tiny", "results", "sst_results.json")))
    assert results["sst"]["median"]["accuracy"] == summary["sst"]["median"]["accuracy"]
    dev = json.load(open(os.path.join(trial_dir, "dev_predictions", "sst_dev.json")))
    assert len(dev["predictions"]) == 64
    submission = open(os.path.join(trial_dir, "test_predictions", "SST-2.tsv")).read().splitlines()
    assert submission[0] == "index\tprediction" and len(submission) == 9
    assert tf.train.latest_checkpoint(trial_dir)


@pytest.mark.slow  # end to end: CI runs it in the slow tier
def test_exported_classifier_serves_raw_text_in_a_fresh_process(sst_run):
    data_dir, _, _ = sst_run
    export_dir = os.path.join(data_dir, "models", "tiny", "finetuning_models", "sst_model_1", "saved_model", "sst")
    dev = json.load(open(os.path.join(data_dir, "models", "tiny", "finetuning_models", "sst_model_1",
                                      "dev_predictions", "sst_dev.json")))
    texts = [line.split("\t")[0] for line in open(os.path.join(data_dir, "finetuning_data", "sst", "dev.tsv"))][1:17]
    code = f"""
import json, tensorflow as tf, tensorflow_text
from tensorflow.core.protobuf import saved_model_pb2
proto = saved_model_pb2.SavedModel()
proto.ParseFromString(open({export_dir!r} + "/saved_model.pb", "rb").read())
xla = [fn.signature.name for fn in proto.meta_graphs[0].graph_def.library.function if fn.attr["_XlaMustCompile"].b]
model = tf.saved_model.load({export_dir!r})
out = model.signatures["serving_default"](sentence=tf.constant({texts!r}))
ids = model.signatures["serve_ids"](input_ids=out["input_ids"], input_mask=tf.cast(out["input_ids"] > 0, tf.int32),
                                    segment_ids=tf.zeros_like(out["input_ids"]))
print(json.dumps({{"labels": [l.decode() for l in out["label"].numpy()],
                   "xla": xla, "same": bool((ids["label_id"].numpy() == out["label_id"].numpy()).all()),
                   "p": out["probabilities"].numpy().tolist()}}))
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd="/",
                            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"), timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    served = json.loads(result.stdout.strip().splitlines()[-1])
    # The served labels are the in-process model's dev predictions for the same sentences.
    assert served["labels"] == [str(row["prediction"]) for row in dev["predictions"][:16]]
    assert served["same"]  # the raw-text and the id signatures agree
    assert served["xla"] == []  # TF Serving runs graphs without XLA by default
    np.testing.assert_allclose(np.sum(served["p"], axis=1), 1.0, atol=1e-5)
    # The documented signatures, as saved_model_cli shows them.
    shown = subprocess.run(["saved_model_cli", "show", "--dir", export_dir, "--all"], capture_output=True,
                           text=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"), timeout=300)
    assert shown.returncode == 0, shown.stderr[-2000:]
    for word in ("signature_def['serving_default']", "inputs['sentence']", "outputs['label']",
                 "outputs['probabilities']", "signature_def['serve_ids']", "inputs['input_ids']"):
        assert word in shown.stdout, word


def test_missing_init_checkpoint_is_an_error_never_a_random_start(tmp_path):
    write_sst(str(tmp_path))
    (tmp_path / "vocab.txt").write_text("\n".join(VOCAB) + "\n")
    with pytest.raises(CheckpointError, match="init_checkpoint"):
        run_finetuning(hparams(tmp_path, task_names=["sst"]), CPU)
    with pytest.raises(ConfigError, match="cola"):  # an unknown task lists the known ones
        run_finetuning(hparams(tmp_path, task_names=["sentiment"], init_checkpoint="random"), CPU)


@pytest.mark.slow  # end to end: CI runs it in the slow tier
def test_squad_v2_and_original_checkpoint_init(tmp_path):
    """SQuAD 2.0 fine-tunes from an original-release checkpoint and writes the QA outputs and export."""
    config = write_pretrained(str(tmp_path))
    params = ref.random_original_params(ref.original_param_shapes(config.to_dict()), 1)
    prefix = write_tf1_checkpoint(params, str(tmp_path / "original" / "model.ckpt"), global_step=5)
    write_squad(str(tmp_path))
    import io
    out = io.StringIO()
    summary = run_finetuning(hparams(tmp_path, task_names=["squad"], init_checkpoint=prefix, max_seq_length=24,
                                     max_query_length=6,
                                     num_train_epochs=2.0, beam_size=4), CPU, out=out)
    metrics = summary["squad"]["median"]
    assert {"exact_match", "f1"} <= set(metrics), metrics
    trial_dir = tmp_path / "models" / "tiny" / "finetuning_models" / "squad_model_1"
    predictions = json.load(open(trial_dir / "dev_predictions" / "squad_dev" / "predictions.json"))
    assert len(predictions) == 32
    assert (trial_dir / "dev_predictions" / "squad_dev" / "null_odds.json").exists()
    model = tf.saved_model.load(str(trial_dir / "saved_model" / "squad"))
    served = model.signatures["serving_default"](question=tf.constant(["what answer ?"]),
                                                 context=tf.constant(["the movie was great"]))
    assert set(served) >= {"answer", "start", "end", "null_odds"}


def test_multi_task_sst_and_chunk_share_one_encoder(tmp_path):
    write_pretrained(str(tmp_path))
    write_sst(str(tmp_path), n_train=128, n_dev=32)
    write_chunk(str(tmp_path), n=64)
    import io
    summary = run_finetuning(hparams(tmp_path, task_names=["sst", "chunk"], num_train_epochs=6.0,
                                     write_test_outputs=False, export=False), CPU, out=io.StringIO())
    assert set(summary) == {"sst", "chunk"} and "accuracy" in summary["sst"]["median"]
    # The tagging task learns through the shared encoder. (How fast the tiny model's [CLS] head
    # learns next to it depends on the random init; single-task learning is tested above.)
    assert summary["chunk"]["median"]["f1"] > 80.0, summary


@pytest.mark.slow  # end to end: CI runs it in the slow tier
def test_trials_report_the_median_and_keep_only_the_last_weights(tmp_path):
    write_pretrained(str(tmp_path))
    write_sst(str(tmp_path), n_train=64, n_dev=32)
    import io
    summary = run_finetuning(hparams(tmp_path, task_names=["sst"], num_trials=3, num_train_epochs=1.0,
                                     write_test_outputs=False, export=False), CPU, out=io.StringIO())
    accuracies = [t["accuracy"] for t in summary["sst"]["trials"]]
    assert len(accuracies) == 3 and summary["sst"]["median"]["accuracy"] == sorted(accuracies)[1]
    runs = tmp_path / "models" / "tiny" / "finetuning_models"
    assert not [f for f in os.listdir(runs / "sst_model_1") if f.startswith("ckpt-")]
    assert (runs / "sst_model_1" / "dev_predictions" / "sst_dev.json").exists()
    assert tf.train.latest_checkpoint(str(runs / "sst_model_3"))
    assert os.listdir(runs / "sst_model_3" / "train")  # TensorBoard events of the fine-tuning loss
    table = open(tmp_path / "models" / "tiny" / "results" / "sst_results.txt").read()
    assert "trial 3" in table and "median" in table

    # A rerun of the finished run trains nothing again, though trials 1 and 2 lost their weights.
    out = io.StringIO()
    again = run_finetuning(hparams(tmp_path, task_names=["sst"], num_trials=3, num_train_epochs=1.0,
                                   write_test_outputs=False, export=False), CPU, out=out)
    assert again == summary
    assert out.getvalue().count("its results are reused") == 3 and "fine-tuning sst" not in out.getvalue()
    # Other hparams run the trial again, and say why.
    out = io.StringIO()
    changed = run_finetuning(hparams(tmp_path, task_names=["sst"], num_trials=1, num_train_epochs=1.0,
                                     learning_rate=1e-3, write_test_outputs=False, export=False), CPU, out=out)
    assert "trial 1: finished before with other hparams (learning_rate); running it again" in out.getvalue()
    assert "trial 1: fine-tuning sst" in out.getvalue() and len(changed["sst"]["trials"]) == 1
    # Trial 3 kept its weights (the last trial): trained with the old hparams, they are not
    # resumed but trained afresh; trial 1 was just run with these hparams and is reused.
    out = io.StringIO()
    run_finetuning(hparams(tmp_path, task_names=["sst"], num_trials=3, num_train_epochs=1.0,
                           learning_rate=1e-3, write_test_outputs=False, export=False), CPU, out=out)
    log = out.getvalue()
    assert "trial 1: finished by an earlier run with these hparams" in log
    assert "trial 3: finished before with other hparams (learning_rate)" in log
    assert "trial 3: fine-tuning sst" in log and "trial 3: resuming" not in log, log
    record = json.loads((runs / "sst_model_3" / "trial_results.json").read_text())
    assert record["hparams"]["learning_rate"] == 1e-3
    # Changed dev data (the same hparams) runs the trial again too.
    write_sst(str(tmp_path), n_train=64, n_dev=24)
    out = io.StringIO()
    rerun = run_finetuning(hparams(tmp_path, task_names=["sst"], num_trials=1, num_train_epochs=1.0,
                                   learning_rate=1e-3, write_test_outputs=False, export=False), CPU, out=out)
    log = out.getvalue()
    assert "trial 1: finished before on other data" in log and "trial 1: fine-tuning sst" in log, log
    assert "sst dev: 24 examples" in log and len(rerun["sst"]["trials"]) == 1


def test_bad_rows_stop_the_run_naming_the_line_unless_the_skip_hparam_is_set(tmp_path):
    """A malformed GLUE row is an error naming file and line whose advice works from --hparams."""
    from convbert_tf.finetuning.run import FinetuningRun
    from convbert_tf.finetuning.examples import DataError
    from convbert_tf.finetuning.tasks.registry import get_task

    data_dir = str(tmp_path)
    write_sst(data_dir, n_train=8, n_dev=4)
    with open(os.path.join(data_dir, "vocab.txt"), "w") as f:
        f.write("\n".join(VOCAB) + "\n")
    train = os.path.join(data_dir, "finetuning_data", "sst", "train.tsv")
    with open(train, "a") as f:
        f.write("a row with a label that is not one\tmaybe\n")  # line 10: header + 8 rows + this
    task = get_task("sst")
    strict = FinetuningRun(hparams(data_dir, task_names=["sst"], init_checkpoint="random"), CPU, out=open(os.devnull, "w"))
    with pytest.raises(DataError, match=rf'{train}:10: .*"skip_bad_rows": true'):
        strict.read(task, "train")
    lenient = FinetuningRun(hparams(data_dir, task_names=["sst"], init_checkpoint="random", skip_bad_rows=True), CPU,
                            out=open(os.devnull, "w"))
    examples, features = lenient.read(task, "train")
    assert len(examples) == len(features) == 8
