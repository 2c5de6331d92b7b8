"""The ablation command: variants, FLOP-matched steps, skip logic and the report's arithmetic (fast);
one tiny ablation end to end, shared by the checks of its conditions and its report (slow)."""

import dataclasses
import io
import json
import os
import random
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from convbert_tf import flops
from convbert_tf.ablation import budget, data, experiment, init, report, runs
from convbert_tf.ablation.settings import AblationSettings, base_hparams, plan_runs, pretraining_hparams, train_steps
from convbert_tf.ablation.variants import LADDER, Variant, parse_variants
from convbert_tf.config import ConfigError
from finetuning_data import sentiment_rows, write_sst
from repo_paths import ROOT

# A 32-wide, 1-layer model on 32-token records: a train step takes milliseconds.
TINY_MODEL = {"max_seq_length": 32, "train_batch_size": 8, "eval_batch_size": 8, "embedding_size": 16,
              "generator_hidden_size": 0.5, "iterations_per_loop": 3, "num_warmup_steps": 2,
              "model_hparam_overrides": {"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 4,
                                         "intermediate_size": 64, "max_position_embeddings": 32}}


def tiny_settings(output_dir, data_dir="/nonexistent/data", **changes) -> AblationSettings:
    _, pretraining = base_hparams(json.dumps(TINY_MODEL))
    values = dict(output_dir=str(output_dir), data_dir=data_dir, preset="tiny",
                  pretraining={**pretraining, "vocab_size": 100},
                  variants=tuple(parse_variants("bert,+grouped_ffn")), seeds=(0,), num_train_steps=6,
                  num_eval_points=2)
    values.update(changes)
    return AblationSettings(**values)


# ----- variants and presets ----------------------------------------------------------------------
def test_default_variants_are_the_papers_ladder_and_set_every_architecture_key():
    variants = parse_variants(",".join(LADDER))
    assert [v.name for v in variants] == ["bert", "+bottleneck", "+span_conv", "+grouped_ffn"]
    configs = [pretraining_hparams(tiny_settings("/tmp/x"), v, 0).model_config() for v in variants]
    assert [(c.head_ratio, c.conv_type, c.linear_groups) for c in configs] == [
        (1, "noconv", 1), (2, "noconv", 1), (2, "sdconv", 1), (2, "sdconv", 2)]
    assert configs[0].heads.bottleneck_size == 32 and configs[1].heads.bottleneck_size == 16


def test_a_variant_wins_over_the_presets_top_level_architecture():
    # medium-small groups its FFN in 2 at the top level; the ladder's bert must still have 1 group.
    _, base = base_hparams('{"model_size": "medium-small", "model_hparam_overrides": {"num_hidden_layers": 1}}')
    settings = tiny_settings("/tmp/x", pretraining={**base, "vocab_size": 100})
    config = pretraining_hparams(settings, parse_variants("bert")[0], 0).model_config()
    assert (config.linear_groups, config.head_ratio, config.conv_type, config.hidden_size) == (1, 1, "noconv", 384)


def test_user_variants_as_json():
    variants = parse_variants('{"bert": null, "k5": {"conv_kernel_size": 5}}')
    assert variants == [Variant("bert", LADDER["bert"]), Variant("k5", {"conv_kernel_size": 5})]
    config = pretraining_hparams(tiny_settings("/tmp/x"), variants[1], 0).model_config()
    assert (config.conv_kernel_size, config.conv_type, config.head_ratio) == (5, "sdconv", 2)


@pytest.mark.parametrize("text, message", [
    ("bert,albert", "'albert' is not a ladder step"),
    ('{"x": {"num_heads": 3}}', "unknown config field(s) ['num_heads']"),
    ('{"x": {"vocab_size": 3}}', "which the data decides"),
    ('{"a/b": {}}', "names a directory"),
    ('{"x": [1]}', "must be a JSON object"),
    ("", "--variants is empty"),
])
def test_bad_variants_are_errors_that_say_what_is_wrong(text, message):
    with pytest.raises(ConfigError) as error:
        parse_variants(text)
    assert message in str(error.value)


def test_model_size_json_overrides_its_preset_and_refuses_what_the_ablation_sets():
    preset, values = base_hparams('{"learning_rate": 0.01, "model_hparam_overrides": {"num_hidden_layers": 1}}')
    assert preset == "tiny" and values["learning_rate"] == 0.01 and values["export_at_end"] is False
    assert values["model_hparam_overrides"] == {"hidden_size": 128, "num_hidden_layers": 1, "num_attention_heads": 4,
                                                "intermediate_size": 512, "max_position_embeddings": 128}
    assert base_hparams("small") == ("small", {"model_size": "small", "export_at_end": False,
                                               "model_hparam_overrides": {}})
    for text, message in (('{"seed": 3}', "use --seeds"), ('{"head_ratio": 1}', "use --variants"),
                          ('{"electra_objective": false}', "ELECTRA's objective"), ("large", "not one of the presets")):
        with pytest.raises(ConfigError) as error:
            base_hparams(text)
        assert message in str(error.value)


def test_options_that_exclude_each_other_and_missing_tasks_are_errors(tmp_path):
    for options, message in ((dict(corpus_dir="a", data_dir="b"), "exactly one of --corpus_dir"),
                             (dict(data_dir="b", num_train_steps=5, flops_budget="1e9"), "at most one of"),
                             (dict(data_dir=str(tmp_path), finetune_trials=0), "--finetune_trials")):
        with pytest.raises(ConfigError) as error:
            experiment.make_settings(output_dir=str(tmp_path / "out"), variants="bert", **options)
        assert message in str(error.value)
    write_sst(str(tmp_path))
    os.makedirs(tmp_path / "finetuning_data" / "notes")
    assert data.finetune_tasks(["all"], str(tmp_path)) == ("sst",)
    assert data.finetune_tasks(["sst"], str(tmp_path)) == ("sst",)
    for requested, message in ((["cola"], "finetuning_data/cola does not exist"), (["glue"], "unknown task 'glue'")):
        with pytest.raises(ConfigError) as error:
            data.finetune_tasks(requested, str(tmp_path))
        assert message in str(error.value)
    with pytest.raises(ConfigError, match="no task directory"):
        data.finetune_tasks(["all"], str(tmp_path / "x"))


# ----- compute ---------------------------------------------------------------------------------
def test_flop_matched_steps_follow_the_flop_counter():
    settings = tiny_settings("/tmp/x", num_train_steps=None, flops_budget="bert:1000")
    steps, per_step = train_steps(settings)
    for variant in settings.variants:
        hp = pretraining_hparams(settings, variant, 0)
        counted = (flops.electra_step_flops(hp.model_config(), hp.generator_config(), 32, hp.predictions_per_seq)
                   * 8 * 32)
        assert per_step[variant.name] == counted
    budget_flops = 1000 * per_step["bert"]
    assert steps["bert"] == 1000
    assert steps["+grouped_ffn"] == int(budget_flops // per_step["+grouped_ffn"]) > 1000  # ConvBERT is cheaper
    assert steps["+grouped_ffn"] * per_step["+grouped_ffn"] <= budget_flops < (steps["+grouped_ffn"] + 1) * per_step[
        "+grouped_ffn"]
    numeric, _ = train_steps(dataclasses.replace(settings, flops_budget=f"{budget_flops:.6e}"))
    assert numeric == steps
    added_later, _ = train_steps(dataclasses.replace(settings, variants=tuple(parse_variants("+grouped_ffn"))))
    assert added_later == {"+grouped_ffn": steps["+grouped_ffn"]}  # bert:1000 without bert among the variants
    assert [p.hp.num_train_steps for p in plan_runs(settings)] == [steps["bert"], steps["+grouped_ffn"]]
    with pytest.raises(ConfigError, match="less than one step"):
        budget.matched_steps(10.0, per_step)


def test_eval_points_are_spread_evenly_and_end_at_the_last_step():
    assert budget.eval_steps(10, 4) == [2, 5, 8, 10]
    assert budget.eval_steps(3, 5) == [1, 2, 3]
    assert budget.eval_steps(7, 1) == [7]


# ----- the report's arithmetic -------------------------------------------------------------------
def fake_result(variant, seed, disc_auc, sst=None, steps=10):
    return {"variant": {"name": variant, "overrides": {}}, "seed": seed, "parameters": {"discriminator": 1000},
            "pretraining_flops": 5e9, "train_seconds": 60.0 + seed, "batch_digest": f"digest-{seed}",
            "num_train_steps": steps,
            "final": {"masked_lm_accuracy": 0.5, "disc_accuracy": 0.9, "disc_auc_exact": disc_auc, "disc_loss": 0.3},
            "curve": [{"step": steps, "flops": 5e9, "metrics": {"disc_loss": 0.3}}],
            "finetuning": {} if sst is None else {"sst": {"median": {"accuracy": sst}, "trials": 3}}}


def test_report_means_stds_and_paired_signs_by_hand():
    results = [fake_result("bert", 0, 0.80, 90.0), fake_result("bert", 1, 0.70, 80.0),
               fake_result("bert", 2, 0.75, 85.0), fake_result("conv", 0, 0.85, 91.0),
               fake_result("conv", 1, 0.72, 79.0), fake_result("conv", 2, 0.74, 86.0)]
    aggregated = report.aggregate(results, ["bert", "conv"], "bert")
    bert, conv = aggregated["rows"]
    auc = bert["cells"]["held_out/disc_auc_exact"]
    assert auc["mean"] == pytest.approx(0.75) and auc["std"] == pytest.approx(0.05) and auc["n"] == 3
    paired = conv["cells"]["held_out/disc_auc_exact"]["vs_baseline"]
    assert paired["per_seed"] == pytest.approx([0.05, 0.02, -0.01])
    assert paired["mean"] == pytest.approx(0.02) and paired["signs"] == "+ + -"
    sst = conv["cells"]["dev/sst/accuracy"]
    assert sst["per_seed"] == {"0": 91.0, "1": 79.0, "2": 86.0} and sst["vs_baseline"]["signs"] == "+ - +"
    assert "vs_baseline" not in bert["cells"]["dev/sst/accuracy"]
    assert aggregated["identical_batches"] == {"0": True, "1": True, "2": True}
    text = report.markdown(aggregated, report.report_columns(results))
    assert "| bert | 3 | 1,000 | 5e+09 | 61 ± 1 | 0.5000 ± 0.0000 | 0.9000 ± 0.0000 | 0.7500 ± 0.0500 |" in text
    assert ("| conv | ×1.000 | ×1.000 | +0 (0 0 0) | +0.0000 (0 0 0) | +0.0000 (0 0 0) | +0.0200 (+ + -) | "
            "+0.0000 (0 0 0) | +0.33 (+ - +) |") in text


def test_paired_differences_use_only_the_seeds_both_rows_have():
    results = [fake_result("bert", 0, 0.8), fake_result("bert", 1, 0.7), fake_result("conv", 1, 0.9),
               dict(fake_result("conv", 2, 0.1), batch_digest="other")]
    aggregated = report.aggregate(results, ["bert", "conv"], "bert")
    paired = aggregated["rows"][1]["cells"]["held_out/disc_auc_exact"]["vs_baseline"]
    assert paired["seeds"] == [1] and paired["per_seed"] == pytest.approx([0.2])
    assert aggregated["rows"][1]["cells"]["held_out/disc_auc_exact"]["std"] == pytest.approx(np.std([0.9, 0.1], ddof=1))
    assert report.aggregate(results + [fake_result("conv", 0, 0.5)], ["bert", "conv"], "bert")[
        "identical_batches"]["0"] is True
    assert report.identical_batches([fake_result("bert", 2, 0.1), dict(fake_result("conv", 2, 0.1),
                                                                       batch_digest="x")]) == {"2": False}


def test_primary_metric_is_what_electra_reports():
    assert report.primary_metric({"mcc": 1.0}) == "mcc"
    assert report.primary_metric({"accuracy": 1.0, "f1": 2.0}) == "accuracy"
    assert report.primary_metric({"pearson": 1.0, "spearman": 2.0, "mse": 3.0}) == "spearman"
    assert report.primary_metric({"exact_match": 1.0, "f1": 2.0}) == "f1"


# ----- skip logic ------------------------------------------------------------------------------
def test_finished_runs_are_reused_and_new_seeds_or_changed_hparams_are_not(tmp_path):
    settings = tiny_settings(tmp_path, seeds=(0, 1))
    plans = plan_runs(settings)
    assert [(p.variant.name, p.seed) for p in plans] == [("bert", 0), ("+grouped_ffn", 0), ("bert", 1),
                                                         ("+grouped_ffn", 1)]
    first, second = plans[0], plans[2]
    os.makedirs(first.hp.model_dir)
    runs.check_run_record(first)
    with open(os.path.join(first.hp.model_dir, runs.RESULT), "w") as f:
        json.dump({"plan_key": runs.plan_key(first), "seed": 0}, f)
    assert runs.finished_result(first) == {"plan_key": runs.plan_key(first), "seed": 0}
    assert runs.finished_result(second) is None  # a new seed runs
    more_points = dataclasses.replace(first, eval_steps=(2, 4, 6))
    assert runs.finished_result(more_points) is None  # asked for more than it has: its stages run again
    changed = dataclasses.replace(first, hp=dataclasses.replace(first.hp, learning_rate=0.5))
    with pytest.raises(ConfigError) as error:
        runs.check_run_record(changed)
    assert "learning_rate" in str(error.value) and "another --output_dir" in str(error.value)


def test_a_rerun_under_fewer_eval_points_than_trained_is_refused(tmp_path):
    plan = plan_runs(tiny_settings(tmp_path))[0]
    os.makedirs(plan.hp.model_dir)
    with open(os.path.join(plan.hp.model_dir, "checkpoint"), "w") as f:
        f.write('model_checkpoint_path: "ckpt-6"\nall_model_checkpoint_paths: "ckpt-6"\n')
    open(os.path.join(plan.hp.model_dir, "ckpt-6.index"), "w").close()
    execution = runs.RunExecution(plan, strategy=None, out=io.StringIO())
    with pytest.raises(ConfigError, match="trained to step 6 already"):
        execution.pretrain_and_evaluate(plan.hp, 3)


# ----- one tiny ablation end to end ---------------------------------------------------------------
def write_corpus(corpus_dir, documents=12, lines=20):
    rng = random.Random(0)
    os.makedirs(corpus_dir)
    for d in range(documents):
        with open(os.path.join(corpus_dir, f"doc{d}.txt"), "w") as f:
            f.writelines(f"{sentence} .\n" for sentence, _ in sentiment_rows(rng, lines))


@pytest.fixture(scope="module")
def ablation(tmp_path_factory):
    """bert and +grouped_ffn, seed 0, 6 steps with evals at 3 and 6, then one epoch of sst."""
    root = tmp_path_factory.mktemp("ablation")
    write_corpus(str(root / "corpus"))
    write_sst(str(root / "tasks"), n_train=128, n_dev=64)
    settings = experiment.make_settings(
        output_dir=str(root / "out"), corpus_dir=str(root / "corpus"), variants="bert,+grouped_ffn",
        model_size=json.dumps(TINY_MODEL), num_train_steps=6, seeds=["0"], num_eval_points=2,
        finetune_tasks=["sst"], finetune_data_dir=str(root / "tasks"),
        finetune_hparams='{"max_seq_length": 16, "num_train_epochs": 1}', vocab_size=100, log=lambda line: None)
    strategy = tf.distribute.OneDeviceStrategy("/cpu:0")
    out = io.StringIO()
    outcome = experiment.run_ablation(settings, strategy, out)
    return {"settings": settings, "strategy": strategy, "outcome": outcome, "log": out.getvalue(),
            "plans": plan_runs(settings)}


def read_json(path):
    with open(path) as f:
        return json.load(f)


@pytest.mark.slow
def test_tiny_ablation_writes_the_report_tables_and_plots(ablation):
    output_dir = ablation["settings"].output_dir
    assert ablation["outcome"]["ran"] == ["bert seed 0", "+grouped_ffn seed 0"]
    for name in ("report.md", "report.json", "loss_vs_flops.png", "dev_scores.png", "ablation.json"):
        assert os.path.exists(os.path.join(output_dir, name)), name
    text = open(os.path.join(output_dir, "report.md")).read()
    assert ("| variant | seeds | params | pretrain FLOPs | wall time (s) | MLM acc | disc acc | disc AUC | "
            "disc loss | sst accuracy |") in text
    assert "| bert | 1 |" in text and "| +grouped_ffn | 1 |" in text and "Difference from bert" in text
    assert text in ablation["log"]
    with open(os.path.join(output_dir, "loss_vs_flops.png"), "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_report_numbers_equal_the_runs_own_result_files(ablation):
    aggregated = read_json(os.path.join(ablation["settings"].output_dir, "report.json"))
    rows = {row["variant"]: row["cells"] for row in aggregated["rows"]}
    for plan in ablation["plans"]:
        cells = rows[plan.variant.name]
        held_out = read_json(os.path.join(plan.hp.model_dir, "eval", "step-6.json"))  # trainer.evaluate's file
        assert held_out["global_step"] == 6
        for key in ("masked_lm_accuracy", "disc_accuracy", "disc_auc_exact", "disc_loss"):
            assert cells[f"held_out/{key}"]["per_seed"] == {"0": held_out[key]}
        finetuned = read_json(os.path.join(plan.hp.model_dir, "results", "sst_results.json"))  # the runner's file
        assert cells["dev/sst/accuracy"]["per_seed"] == {"0": finetuned["sst"]["median"]["accuracy"]}
        assert cells["pretraining_flops"]["mean"] == 6 * budget.step_flops(plan.hp)
        run = init.initial_weights(plan.hp, (), ablation["strategy"])[0]
        assert cells["parameters"]["mean"] == sum(int(np.prod(w.shape)) for w in run.model.discriminator.weights)
        assert cells["train_seconds"]["mean"] == sum(read_json(os.path.join(plan.hp.model_dir, "progress.json"))[
            "train_seconds"].values())


@pytest.mark.slow
def test_variants_within_a_seed_read_identical_masked_batches(ablation):
    bert, convbert = ablation["plans"]
    digests = [read_json(os.path.join(p.hp.model_dir, "init", "init.json"))["batch_digest"] for p in (bert, convbert)]
    assert digests[0] == digests[1]
    assert read_json(os.path.join(ablation["settings"].output_dir, "report.json"))["identical_batches"] == {"0": True}
    # The digest is of what the trainer reads, and it tells seeds apart.
    from convbert_tf.pretraining import run as trainer
    recomputed = init.batch_digest(trainer.Pretraining(bert.hp, ablation["strategy"], out=io.StringIO()))
    other_seed = init.batch_digest(trainer.Pretraining(dataclasses.replace(bert.hp, seed=1), ablation["strategy"],
                                                       out=io.StringIO()))
    assert recomputed == digests[0] and other_seed != digests[0]


@pytest.mark.slow
def test_initial_weights_agree_wherever_shapes_agree(ablation):
    bert, convbert = ablation["plans"]
    prefixes = [init.init_prefix(p.hp.model_dir) for p in (bert, convbert)]
    shapes = [dict(tf.train.list_variables(prefix)) for prefix in prefixes]
    shared = [k for k, shape in shapes[0].items() if "VARIABLE_VALUE" in k and shapes[1].get(k) == shape]
    random_drawn = 0
    for key in shared:
        values = [tf.train.load_variable(prefix, key) for prefix in prefixes]
        np.testing.assert_array_equal(values[0], values[1], err_msg=key)
        random_drawn += float(np.std(values[0])) > 0
    assert random_drawn >= 8  # embeddings, feed-forward, heads, generator: not only zeros and ones
    # Keras's own seeding would not give this: the same two builds without the shared values differ.
    own = [init.network_weights(init.initial_weights(p.hp, (), ablation["strategy"])[0]) for p in (bert, convbert)]
    assert any(not np.array_equal(w.numpy(), own[1][key].numpy()) for key, w in own[0].items() if key in own[1])
    assert read_json(os.path.join(convbert.hp.model_dir, "init", "init.json"))["weights_from"]["bert"] > 0


@pytest.mark.slow
def test_rerun_skips_finished_runs_and_resumes_an_interrupted_one(ablation):
    settings, strategy = ablation["settings"], ablation["strategy"]
    bert_dir = ablation["plans"][0].hp.model_dir
    checkpoints = sorted(f for f in os.listdir(bert_dir) if f.startswith("ckpt-"))
    again = experiment.run_ablation(settings, strategy, io.StringIO())
    assert again["ran"] == [] and again["reused"] == ["bert seed 0", "+grouped_ffn seed 0"]
    assert sorted(f for f in os.listdir(bert_dir) if f.startswith("ckpt-")) == checkpoints
    # Interrupted after the checkpoint at step 3: the rerun trains 3 -> 6 only, to the same numbers.
    finished = read_json(os.path.join(bert_dir, "eval", "step-6.json"))
    for name in ("result.json", "eval/step-6.json", "eval/step-6.txt", "ckpt-6.index", "ckpt-6.data-00000-of-00001"):
        os.remove(os.path.join(bert_dir, name))
    with open(os.path.join(bert_dir, "checkpoint"), "w") as f:
        f.write('model_checkpoint_path: "ckpt-3"\nall_model_checkpoint_paths: "ckpt-3"\n')
    log = io.StringIO()
    resumed = experiment.run_ablation(settings, strategy, log)
    assert resumed["ran"] == ["bert seed 0"] and "resuming from" in log.getvalue()
    assert "initial weights" not in log.getvalue()  # the init stage was done
    again_metrics = read_json(os.path.join(bert_dir, "eval", "step-6.json"))
    for key in ("masked_lm_accuracy", "disc_accuracy", "disc_auc_exact", "disc_loss"):
        assert again_metrics[key] == pytest.approx(finished[key], rel=1e-4, abs=1e-5), key


@pytest.mark.slow
def test_the_command_line_runs_an_ablation_and_exits_1_on_bad_options(ablation, tmp_path):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    command = [sys.executable, "-m", "convbert_tf.ablation", f"--output_dir={tmp_path}", "--variants=+span_conv",
               f"--data_dir={ablation['settings'].data_dir}", f"--model_size={json.dumps(TINY_MODEL)}",
               "--num_train_steps=2", "--num_eval_points=1", "--seeds=3"]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "| +span_conv | 1 |" in done.stdout
    assert os.path.exists(tmp_path / "runs" / "+span_conv" / "seed-3" / "result.json")
    refused = subprocess.run(command + ["--flops_budget=bert:3"], cwd=ROOT, env=env, capture_output=True, text=True,
                             timeout=600)
    assert refused.returncode == 1 and "at most one of --num_train_steps" in refused.stderr
