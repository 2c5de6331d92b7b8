"""FinetuningHParams: the hparams of the original `configure_finetuning.py`, same names and defaults.

Resolution: defaults, then per-size values (`convbert_tf.config.SIZES`), then per-task values (only when one task is
given, as in the original), then the user's `--hparams`, which win. Unknown keys are errors.
"""

from __future__ import annotations

import dataclasses
import os

from convbert_tf.config import ConfigError, ConvBertConfig, finetuning_size_hparams
from convbert_tf.finetuning.scorers import SPAN_RULES
from convbert_tf.run_hparams import ModelHParams, check_positive_ints, user_hparams

# How a train step reduces its examples' losses (see convbert_tf/finetuning/trainer.py).
LOSS_REDUCTIONS = ("sum", "mean")


def task_hparams(task_names) -> dict:
    """Per-task values of the original, applied only when exactly one task is given."""
    if len(task_names) != 1:
        return {}
    task = task_names[0]
    if task in ("rte", "sts"):
        return {"num_train_epochs": 10.0}
    if "squad" in task or "qa" in task:
        return {"max_seq_length": 512, "num_train_epochs": 2.0, "write_test_outputs": False}
    if task == "chunk":
        return {"max_seq_length": 256, "num_train_epochs": 3.0}
    return {"num_train_epochs": 3.0}

@dataclasses.dataclass(frozen=True)
class FinetuningHParams(ModelHParams):
    """Fine-tuning hparams; names and defaults are the original release's unless marked."""

    task_names: tuple = ("cola",)
    """Tasks; several share one encoder (multi-task)."""
    debug: bool = False
    """Few examples and steps."""
    log_examples: bool = False
    """Print the first featurized examples."""
    num_trials: int = 1
    """Fine-tuning runs from the same checkpoint; the median is reported."""
    do_train: bool = True
    """Fine-tune."""
    do_eval: bool = True
    """Score the dev split(s) after training."""
    keep_all_models: bool = False
    """Keep every trial's checkpoint (else only the last trial's)."""

    # Training.
    learning_rate: float = 3e-4
    """Peak learning rate (per-size value unless given)."""
    weight_decay_rate: float = 0.01
    """AdamW weight decay (not on LayerNorm and biases)."""
    layerwise_lr_decay: float = 0.8
    """Each layer below the top gets this factor more; embeddings the most."""
    layerwise_lr_original_off_by_one: bool = False
    """Reproduce the original's exponent (top layer 0.8^2 instead of 0.8; electra#51)."""
    num_train_epochs: float = 3.0
    """Epochs (per-task value unless given)."""
    warmup_proportion: float = 0.1
    """Warmup steps as a fraction of all steps."""
    loss_reduction: str = "sum"
    """"sum": the loss of a step is the sum of its examples' losses, as the original; "mean": divided by the batch."""
    save_checkpoints_steps: int = 1000000
    """Checkpoint interval (a checkpoint is also written at the end)."""
    iterations_per_loop: int = 1000
    """Train steps per compiled call (and between progress lines)."""
    use_tfrecords_if_existing: bool = True
    """Accepted for compatibility; features are cached keyed by task, split, length and vocab."""
    write_test_outputs: bool = True
    """Write test-set predictions (GLUE submission TSVs, SQuAD JSON) when test files exist."""
    n_writes_test: int = 5
    """Trials that write test outputs."""

    # Sizing.
    max_seq_length: int = 128
    """T (per-task value unless given)."""
    train_batch_size: int = 32
    """Global train batch."""
    eval_batch_size: int = 32
    """Global eval batch."""
    predict_batch_size: int = 32
    """Global predict batch."""
    double_unordered: bool = True
    """Double MRPC and STS train sets with the sentence order swapped."""

    # QA.
    max_query_length: int = 64
    """Question tokens kept."""
    doc_stride: int = 128
    """Stride between document spans."""
    n_best_size: int = 20
    """Candidate answers kept per question."""
    max_answer_length: int = 30
    """Longest answer in tokens."""
    answerable_classifier: bool = True
    """Predict whether a question is answerable (SQuAD 2.0)."""
    answerable_uses_start_logits: bool = True
    """Feed the start distribution to the answerable classifier."""
    answerable_weight: float = 0.5
    """Weight of the answerable loss."""
    joint_prediction: bool = True
    """Condition the end on the start (beam search at inference)."""
    beam_size: int = 20
    """Beam of the joint prediction."""
    qa_na_threshold: float = -2.75
    """Null-odds threshold above which a SQuAD 2.0 answer is left empty."""

    # Tagging.
    chunk_span_rule: str = "original"
    """How chunk tags are read into chunks: "original" (the release's rule) or "conlleval" (not in the original)."""

    # Paths.
    data_dir: str | None = None
    """Root: finetuning_data/<task>/, vocab.txt, models/."""
    init_checkpoint: str | None = None
    """Pretrained weights: ours or an original-release checkpoint (prefix or directory); default
    <data_dir>/models/<model_name>. "random" starts from random weights on purpose."""
    vocab_file: str | None = None
    """Default <data_dir>/models/<model_name>/vocab.txt if it exists, else <data_dir>/vocab.txt."""
    model_dir: str | None = None
    """Default <data_dir>/models/<model_name>."""
    tfds_data_dir: str | None = None
    """Read GLUE/SQuAD from prepared tensorflow-datasets here instead of finetuning_data/."""
    skip_bad_rows: bool = False
    """Not in the original as a switch: skip (and count) malformed GLUE rows and CoNLL sentences
    instead of stopping with an error naming the file and line (the original dropped them silently)."""
    skip_bad_answers: bool = False
    """Not in the original as a switch: skip (and count) QA training questions whose answer text is
    not at its answer_start instead of stopping with an error naming the question."""

    # Not in the original.
    export: bool = True
    """Export a servable SavedModel per task after training."""

    @property
    def task_label(self) -> str:
        return "_".join(self.task_names)

    def model_config(self) -> ConvBertConfig:
        return self.resolve_model_config()

def resolve_finetuning_hparams(hparams=None, data_dir: str | None = None, model_name: str | None = None,
                               **overrides) -> FinetuningHParams:
    """Defaults, per-size values, per-task values (one task), then the user's hparams."""
    user, size = user_hparams(FinetuningHParams, hparams, model_name, overrides, "convbert_tf/finetuning/hparams.py")
    tasks = user.get("task_names", FinetuningHParams.task_names)
    if isinstance(tasks, str):
        tasks = [t for t in tasks.split(",") if t]
    if not tasks:
        raise ConfigError("--hparams: task_names is empty")
    values = finetuning_size_hparams(size)
    values.update(task_hparams(list(tasks)))
    values.update(user)
    values["task_names"] = tuple(tasks)
    if data_dir is not None:
        name = values.get("model_name", FinetuningHParams.model_name)
        values.setdefault("data_dir", data_dir)
        values.setdefault("model_dir", os.path.join(data_dir, "models", name))
        model_vocab = os.path.join(values["model_dir"], "vocab.txt")
        values.setdefault("vocab_file", model_vocab if os.path.exists(model_vocab)
                          else os.path.join(data_dir, "vocab.txt"))
        values.setdefault("init_checkpoint", values["model_dir"])
    try:
        resolved = FinetuningHParams(**values)
    except TypeError as e:
        raise ConfigError(f"--hparams: {e}") from None
    check_positive_ints(resolved, ("train_batch_size", "eval_batch_size", "predict_batch_size", "max_seq_length",
                                   "num_trials", "iterations_per_loop"))
    for key, allowed in (("loss_reduction", LOSS_REDUCTIONS), ("chunk_span_rule", SPAN_RULES)):
        if getattr(resolved, key) not in allowed:
            raise ConfigError(f"--hparams: {key} must be one of {', '.join(map(repr, allowed))}, "
                              f"got {getattr(resolved, key)!r}")
    resolved.model_config()
    return resolved
