"""The six steps over one output folder; each step's result is kept in the state file, so that a
rerun skips what an earlier invocation finished."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from convbert_tf import io
from convbert_tf.quickstart import corpus as corpus_text
from convbert_tf.quickstart import opinion_task, predict
from convbert_tf.quickstart.paths import MODEL_NAME, Paths, command, display, script
from convbert_tf.quickstart.progress_view import ProgressView
from convbert_tf.quickstart.settings import (TASK, QuickstartError, Settings, finetuning_hparams,
                                             pretraining_hparams, settings_dict)
from convbert_tf.quickstart.steps import StepPrinter


def curve_ends(event_dir: str, tag: str) -> dict | None:
    """First and last point of a TensorBoard scalar; None when there is none."""
    from convbert_tf import plotting

    if not os.path.isdir(event_dir):
        return None
    points = plotting.read_scalars(event_dir).get(tag)
    if not points:
        return None
    steps = sorted(points)
    return {"first_step": steps[0], "first": points[steps[0]], "last_step": steps[-1], "last": points[steps[-1]]}


class Quickstart:
    """The six steps over one output folder; each step's result is kept in the state file."""

    def __init__(self, paths: Paths, settings: Settings, state: dict):
        self.paths, self.settings, self.state = paths, settings, state
        self.steps = StepPrinter()
        self.strategy = None

    def save_state(self) -> None:
        io.atomic_write_json(self.paths.state, self.state)

    def finish_step(self, name: str, result: dict) -> dict:
        self.state["steps"][name] = result
        self.save_state()
        return result

    def step(self, number: int, name: str, title: str, run_step) -> dict:
        """A step's result: from the state file when an earlier invocation finished it, else run now."""
        if name in self.state["steps"]:
            self.steps.skipped(number, title)
            return self.state["steps"][name]
        return run_step()

    def run(self) -> dict:
        begun = time.perf_counter()
        results = {"corpus": self.step(1, "corpus", "Corpus", self.corpus)}
        print("\nloading TensorFlow ...", flush=True)
        from convbert_tf.training.distribute import get_strategy, set_mixed_precision  # the run's one TensorFlow import

        self.strategy = get_strategy("auto")
        set_mixed_precision("auto", self.strategy)
        data = results["data"] = self.step(2, "data", "Vocab and pretraining TFRecords", self.data)
        results["pretraining"] = self.step(3, "pretraining", "Pretraining",
                                           lambda: self.pretraining(data["vocab_tokens"]))
        if results["pretraining"].get("preempted"):
            return {"preempted": True}
        results["finetuning"] = self.step(4, "finetuning", "Fine-tuning",
                                          lambda: self.finetuning(data["vocab_tokens"], results["corpus"]["titles"]))
        results["serving"] = self.step(5, "serving", "Fresh-process predictions", self.serving)
        results["plot"] = self.step(6, "plot", "Loss curves", self.plot)
        summary = {
            "output_dir": os.path.abspath(self.paths.root),
            "finished": time.strftime("%Y-%m-%d %H:%M:%S"),
            "seconds_this_invocation": round(time.perf_counter() - begun, 1),
            "settings": settings_dict(self.settings),
            "python": sys.version.split()[0],
            "corpus": {k: v for k, v in results["corpus"].items() if k != "titles"},
        }
        summary.update((name, results[name]) for name in ("data", "pretraining", "finetuning", "serving", "plot"))
        io.atomic_write_json(self.paths.summary, summary)
        self.state["finished"] = summary["finished"]
        self.save_state()
        return summary

    # -- 1/6
    def corpus(self) -> dict:
        self.steps.header(1, "Corpus: Python's documentation topics (pydoc_data.topics, shipped with Python)",
                          note="your own data: a folder of UTF-8 text files, one paragraph (or sentence) per "
                               "line, one document per file")
        result = corpus_text.write_corpus(self.paths.corpus)
        self.steps.done(f"{result['files']} files, {result['paragraphs']} paragraphs, {result['words']:,} words "
                        f"in {display(self.paths.corpus)}/")
        return self.finish_step("corpus", result)

    # -- 2/6
    def data(self) -> dict:
        from convbert_tf.data import pretraining_dataset

        paths, settings = self.paths, self.settings
        self.steps.header(2, "WordPiece vocab + pretraining TFRecords", [command(
            ["python", script("build_pretraining_dataset.py")], corpus_dir=display(paths.corpus),
            output_dir=display(paths.records), vocab_file=display(paths.vocab), vocab_size=settings.vocab_size,
            max_seq_length=settings.max_seq_length, num_output_files=1)])
        try:
            built = pretraining_dataset.build_pretraining_dataset(
                paths.corpus, paths.records, paths.vocab, vocab_size=settings.vocab_size,
                max_seq_length=settings.max_seq_length, num_output_files=1, seed=settings.seed,
                log=lambda message: print(f"    {message}", flush=True))
        except pretraining_dataset.DatasetBuildError as e:
            raise QuickstartError(str(e)) from None
        stats = built.stats
        result = {"vocab": paths.vocab, "vocab_tokens": built.vocab_size, "records": list(built.output_files),
                  "examples": stats.examples, "tokens": stats.tokens, "truncated_tokens": stats.truncated_tokens}
        self.steps.done(f"{built.vocab_size} tokens in {display(paths.vocab)}; {stats.examples} examples of "
                        f"{settings.max_seq_length} tokens in {display(paths.records)}/")
        return self.finish_step("data", result)

    # -- 3/6
    def pretraining(self, vocab_tokens: int) -> dict:
        import tensorflow as tf
        from convbert_tf.pretraining import run as trainer
        from convbert_tf.pretraining.hparams import resolve_hparams

        paths, settings = self.paths, self.settings
        hparams = pretraining_hparams(settings, vocab_tokens)
        self.steps.header(
            3, f"Pretraining a {settings.hidden_size}-wide, {settings.num_hidden_layers}-layer ConvBERT for "
               f"{settings.pretrain_steps} steps (ELECTRA: generator MLM loss and discriminator loss)",
            [command(["python", script("run_pretraining.py")], data_dir=display(paths.data), model_name=MODEL_NAME,
                     hparams=hparams)],
            note="the losses fall as it learns; rerunning resumes from the latest checkpoint")
        hp = resolve_hparams(hparams, data_dir=paths.data, model_name=MODEL_NAME)
        view = ProgressView(("gen", "disc"))
        try:
            last = trainer.train(hp, self.strategy, out=view)
        finally:
            view.close()
        if last.get("preempted"):
            print("    stopped by SIGTERM after saving a checkpoint; rerun the same command to resume")
            return {"preempted": True}
        saved_model = os.path.join(hp.model_dir, "saved_model")
        if not os.path.exists(os.path.join(saved_model, "saved_model.pb")):
            self._export_pretrained(hp, view)  # a rerun after a crash during the end-of-run export
        events = os.path.join(hp.model_dir, "train")
        mlm, disc = curve_ends(events, "mlm_loss"), curve_ends(events, "disc_loss")
        result = {"model_dir": hp.model_dir, "steps": settings.pretrain_steps,
                  "checkpoint": tf.train.latest_checkpoint(hp.model_dir), "saved_model": saved_model,
                  "original_layout": os.path.join(hp.model_dir, "original_layout"), "events": events,
                  "mlm_loss": mlm, "disc_loss": disc}
        self.steps.done(f"generator MLM loss {mlm['first']:.3f} (step {mlm['first_step']}) -> {mlm['last']:.3f}, "
                        f"discriminator loss {disc['first']:.3f} -> {disc['last']:.3f}" if mlm and disc else
                        f"checkpoint {display(result['checkpoint'] or hp.model_dir)}")
        return self.finish_step("pretraining", result)

    def _export_pretrained(self, hp, view) -> None:
        import tensorflow as tf
        from convbert_tf.pretraining import run as trainer

        run = trainer.Pretraining(hp, self.strategy, out=view)
        prefix = tf.train.latest_checkpoint(hp.model_dir)
        run.checkpoint.read(prefix).expect_partial()
        trainer.export_run(run, int(run.optimizer.iterations.numpy()))
        view.close()

    # -- 4/6
    def finetuning(self, vocab_tokens: int, titles) -> dict:
        from convbert_tf.finetuning.hparams import resolve_finetuning_hparams
        from convbert_tf.finetuning.run import run_finetuning

        paths, settings = self.paths, self.settings
        counts = opinion_task.write_opinion_task(paths.task_dir, titles, settings.task_sizes, settings.seed)
        hparams = finetuning_hparams(settings, vocab_tokens)
        self.steps.header(
            4, f"Fine-tuning on the built-in '{TASK}' task: is the opinion about a Python topic positive?",
            [command(["python", script("run_finetuning.py")], data_dir=display(paths.data), model_name=MODEL_NAME,
                     hparams=hparams)],
            note=f"data: {display(paths.task_dir)}/{{train,dev,test}}.tsv in GLUE's SST-2 layout ("
                 + ", ".join(f"{split} {c['examples']}" for split, c in counts.items())
                 + "); label 1 when the sentence's opinion word is a positive one (see opinion_label)")
        hp = resolve_finetuning_hparams(hparams, data_dir=paths.data, model_name=MODEL_NAME)
        view = ProgressView(("loss",))
        try:
            results = run_finetuning(hp, self.strategy, out=view)
        finally:
            view.close()
        accuracy = results[TASK]["median"]["accuracy"]
        loss = curve_ends(os.path.join(paths.trial_dir, "train"), "loss")
        if loss is None and view.points:  # event files missing: the progress this run reported
            loss = {"first_step": view.points[0][0], "first": view.points[0][1].get("loss"),
                    "last_step": view.points[-1][0], "last": view.points[-1][1].get("loss")}
        dev = counts["dev"]
        result = {"task": TASK, "data_dir": paths.task_dir, "examples": counts, "dev_accuracy": accuracy,
                  "chance_accuracy": round(100.0 * max(dev["positive"], dev["examples"] - dev["positive"])
                                           / dev["examples"], 2),
                  "steps": loss["last_step"] if loss else None, "loss": loss, "trial_dir": paths.trial_dir,
                  "results": os.path.join(paths.model_dir, "results", f"{TASK}_results.json"),
                  "saved_model": paths.classifier}
        self.steps.done(f"dev accuracy {accuracy:.1f}% (majority class: {result['chance_accuracy']:.1f}%)")
        return self.finish_step("finetuning", result)

    # -- 5/6
    def serving(self) -> dict:
        paths = self.paths
        with open(predict.__file__, "rb") as f:
            io.atomic_write_bytes(paths.predict_script, f.read())
        sentences = [s for s, _ in opinion_task.PROBE_SENTENCES]
        self.steps.header(5, "The exported classifier, loaded in a fresh process (tensorflow + tensorflow_text only)",
                          [command(["python", display(paths.predict_script)] + sentences[:2])],
                          note=f"SavedModel: {display(paths.classifier)}/ (signature serving_default: "
                               "sentence -> label, probabilities)")
        served = _ask_fresh_process(paths, sentences)
        rows = served["predictions"]
        for row, (_, expected) in zip(rows, opinion_task.PROBE_SENTENCES):
            row["expected"] = str(expected)
        correct = sum(row["label"] == row["expected"] for row in rows)
        for row in rows:
            name = predict.LABEL_NAMES.get(row["label"], row["label"])
            mark = "ok" if row["label"] == row["expected"] else "expected " + (
                "positive" if row["expected"] == "1" else "negative")
            print(f"    {name:8s} {row['probability']:.3f}  {row['sentence']}  [{mark}]")
        io.atomic_write_json(paths.predictions, {"saved_model": paths.classifier, "process_id": served["pid"],
                                                 "imported_convbert_tf": served["imported_convbert_tf"],
                                                 "predictions": rows})
        self.steps.done(f"{correct}/{len(rows)} as the task's rule says; answered by process {served['pid']}, "
                        f"not this one ({os.getpid()})")
        return self.finish_step("serving", {"predict_script": paths.predict_script, "predictions": paths.predictions,
                                            "fresh_process": served["pid"] != os.getpid(), "answers": len(rows),
                                            "as_expected": correct})

    # -- 6/6
    def plot(self) -> dict:
        from convbert_tf import plotting

        paths, settings = self.paths, self.settings
        self.steps.header(6, "Loss curves", [command(["python", script("plot_curves.py")],
                                                     run_dir=display(paths.root), output=display(paths.plot))])
        try:
            curves = plotting.collect_curves(paths.root)
            plotting.plot_curves(curves, paths.plot, title=f"ConvBERT quickstart: {settings.pretrain_steps} "
                                 f"pretraining steps, {settings.finetune_epochs:g} fine-tuning epochs")
        except plotting.NoCurvesError as e:
            raise QuickstartError(str(e)) from None
        self.steps.done(f"{display(paths.plot)}")
        return self.finish_step("plot", {"png": paths.plot})


def _ask_fresh_process(paths: Paths, sentences) -> dict:
    """The output folder's predict.py run in a new process where nothing of this repository is importable."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    env.pop("PYTHONPATH", None)
    answer = subprocess.run([sys.executable, paths.predict_script, "--json"] + sentences, capture_output=True,
                            text=True, cwd=paths.root, env=env, timeout=600)
    if answer.returncode != 0:
        raise QuickstartError(f"the exported model did not answer in a fresh process (exit code "
                              f"{answer.returncode}):\n{answer.stderr[-3000:]}")
    return json.loads(answer.stdout.strip().splitlines()[-1])
