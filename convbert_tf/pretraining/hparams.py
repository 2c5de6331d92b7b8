"""PretrainingHParams: every hparam of the original `configure_pretraining.py`, same names and defaults.

Resolution order, as in the original: defaults, then the per-size values of `model_size`
(`convbert_tf.config.SIZES`), then the user's `--hparams` again (so the user wins); `debug: true`
shrinks the run and the model. Unknown keys are errors that name them.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Mapping

from convbert_tf.config import ConfigError, ConvBertConfig, pretraining_size_hparams
from convbert_tf.models.electra import generator_config
from convbert_tf.pretraining.records import BAD_RECORDS_CHOICES
from convbert_tf.run_hparams import ModelHParams, check_positive_ints, user_hparams

DEBUG_HPARAMS = dict(train_batch_size=8, num_train_steps=20, eval_batch_size=4, iterations_per_loop=1,
                     num_eval_steps=2)
DEBUG_MODEL = dict(hidden_size=144, num_hidden_layers=3, num_attention_heads=4, intermediate_size=576)


@dataclasses.dataclass(frozen=True)
class PretrainingHParams(ModelHParams):
    """ELECTRA-style pretraining hparams; names and defaults are the original release's."""

    debug: bool = False
    """Tiny model and run (hidden 144, 3 layers, batch 8, 20 steps)."""
    do_train: bool = True
    """Train. Exactly one of do_train and do_eval must be true."""
    do_eval: bool = False
    """Evaluate the latest checkpoint on the held-out records."""

    # Objective.
    electra_objective: bool = True
    """Replaced-token detection; False trains the full-size model with MLM only (BERT)."""
    gen_weight: float = 1.0
    """Weight of the generator's MLM loss."""
    disc_weight: float = 50.0
    """Weight of the discriminator's loss."""
    mask_prob: float = 0.15
    """Fraction of real tokens masked for the generator."""

    # Optimisation.
    learning_rate: float = 5e-4
    """Peak learning rate lr0 (the schedule multiplies warmup and decay)."""
    lr_decay_power: float = 1.0
    """Power of the polynomial decay to 0 (1 = linear)."""
    weight_decay_rate: float = 0.01
    """AdamW weight decay, not applied to LayerNorm parameters and biases."""
    num_warmup_steps: int = 10000
    """Steps of linear warmup (multiplied onto the decay, as in the original)."""

    # Run length and checkpoints.
    iterations_per_loop: int = 200
    """Train steps per compiled call (and between progress lines)."""
    save_checkpoints_steps: int = 10000
    """Checkpoint every this many steps (and at the end)."""
    num_train_steps: int = 1000000
    """Total train steps."""
    num_eval_steps: int = 100
    """Batches evaluated in do_eval mode."""
    keep_checkpoint_max: int = 5
    """Checkpoints kept (the Estimator default of the original)."""

    # Generator.
    uniform_generator: bool = False
    """No generator network: replacements drawn uniformly over the vocab, MLM loss the constant log V."""
    untied_generator_embeddings: bool = False
    """Not supported: the generator always shares the discriminator's embeddings."""
    untied_generator: bool = True
    """Not supported as False: the generator is always a separate, smaller network."""
    generator_layers: float = 1.0
    """Generator depth as a fraction of the discriminator's."""
    generator_hidden_size: float = 0.25
    """Generator width as a fraction of the discriminator's (per-size value unless given)."""
    disallow_correct: bool = False
    """Never sample the original token for a masked position."""
    temperature: float = 1.0
    """Sampling temperature of the generator."""

    # Batching.
    max_seq_length: int = 128
    """T; the TFRecords must have been written with this length."""
    train_batch_size: int = 128
    """Global train batch, split over replicas."""
    eval_batch_size: int = 128
    """Global eval batch."""
    max_predictions_per_seq: int | None = None
    """Masked slots per sequence; derived as int((mask_prob + 0.005) * max_seq_length)."""
    sample_with_replacement: bool = False
    """Reproduce the original's masking, which samples positions with replacement (a position drawn
    several times is [MASK] if any of its draws chose [MASK])."""
    bad_records: str = "fail"
    """Not in the original. A TFRecord that cannot be read (truncated, CRC mismatch) or parsed (a
    feature missing or not of length max_seq_length): "fail" stops with an error naming the file
    and record; "skip" leaves it out (a broken file is read up to the break), counts it and goes on."""

    # Paths (derived from --data_dir unless given).
    pretrain_tfrecords: str | None = None
    """Glob(s) of the training TFRecords; default <data_dir>/pretrain_tfrecords/pretrain_data.tfrecord*."""
    eval_tfrecords: str | None = None
    """Held-out records for do_eval; default: the last training file when there are several."""
    vocab_file: str | None = None
    """Default <data_dir>/vocab.txt."""
    model_dir: str | None = None
    """Default <data_dir>/models/<model_name>."""
    init_checkpoint: str | None = None
    """Start from this checkpoint (an original-release pretraining checkpoint or one of ours)."""
    results_txt: str | None = None
    """Eval results text file; default <model_dir>/results/unsup_results.txt."""
    results_pkl: str | None = None
    """Accepted for compatibility; results are written as text and JSON."""

    # Logging.
    log_every_steps: int | None = None
    """Progress line interval; default iterations_per_loop."""
    export_at_end: bool = True
    """After the last step, write <model_dir>/saved_model (the discriminator encoder, servable,
    with a raw-text signature) and <model_dir>/original_layout/ (the original release's names)."""

    # ----- derived -------------------------------------------------------------------------
    @property
    def predictions_per_seq(self) -> int:
        if self.max_predictions_per_seq is not None:
            return self.max_predictions_per_seq
        return int((self.mask_prob + 0.005) * self.max_seq_length)

    def model_config(self) -> ConvBertConfig:
        """The discriminator's ConvBertConfig, resolved as the original's get_bert_config."""
        config = self.resolve_model_config(DEBUG_MODEL if self.debug else None)
        if self.max_seq_length > config.max_position_embeddings:
            raise ConfigError(f"--hparams: max_seq_length {self.max_seq_length} exceeds "
                              f"max_position_embeddings {config.max_position_embeddings}")
        return config

    def generator_config(self) -> ConvBertConfig:
        return generator_config(self.model_config(), self.generator_hidden_size, self.generator_layers)



def resolve_hparams(hparams: str | Mapping | None = None, data_dir: str | None = None,
                    model_name: str | None = None, **overrides) -> PretrainingHParams:
    """Builds PretrainingHParams as the original does: defaults, per-size values, then the user's.

    Args:
      hparams: --hparams (JSON string, .json path, or dict).
      data_dir: --data_dir; fills the default paths.
      model_name: --model_name.
      overrides: further values that win over --hparams (flags such as --tpu).
    """
    user, size = user_hparams(PretrainingHParams, hparams, model_name, overrides,
                              "convbert_tf/pretraining/hparams.py for the list")
    values = pretraining_size_hparams(size)
    if user.get("debug"):
        values.update(DEBUG_HPARAMS)
    values.update(user)
    if values.get("bad_records", "fail") not in BAD_RECORDS_CHOICES:
        raise ConfigError(f"--hparams: bad_records is {values['bad_records']!r}; use one of "
                          f"{list(BAD_RECORDS_CHOICES)}")
    if values.get("untied_generator_embeddings"):
        raise ConfigError("--hparams: untied_generator_embeddings=true is not supported; the generator "
                          "shares the discriminator's embeddings")
    if values.get("uniform_generator") and not values.get("electra_objective", True):
        raise ConfigError("--hparams: uniform_generator=true needs electra_objective=true (without a "
                          "discriminator nothing would be trained)")
    if values.get("untied_generator") is False:
        raise ConfigError("--hparams: untied_generator=false is not supported")
    if bool(values.get("do_train", True)) == bool(values.get("do_eval", False)):
        raise ConfigError("--hparams: exactly one of do_train and do_eval must be true")
    if data_dir is not None:
        name = values.get("model_name", PretrainingHParams.model_name)
        values.setdefault("pretrain_tfrecords",
                          os.path.join(data_dir, "pretrain_tfrecords", "pretrain_data.tfrecord*"))
        values.setdefault("vocab_file", os.path.join(data_dir, "vocab.txt"))
        values.setdefault("model_dir", os.path.join(data_dir, "models", name))
    if values.get("model_dir"):
        values.setdefault("results_txt", os.path.join(values["model_dir"], "results", "unsup_results.txt"))
    try:
        resolved = PretrainingHParams(**values)
    except TypeError as e:
        raise ConfigError(f"--hparams: {e}") from None
    check_positive_ints(resolved, ("num_train_steps", "train_batch_size", "eval_batch_size", "iterations_per_loop",
                                   "save_checkpoints_steps", "max_seq_length"))
    resolved.model_config()  # validates the model hparams now, with the key names
    return resolved
