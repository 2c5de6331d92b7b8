"""Sizes of one quickstart run, and the pretraining and fine-tuning hparams they amount to."""

from __future__ import annotations

import dataclasses
import json

MODEL_NAME = "quickstart"
TASK = "sst"


class QuickstartError(Exception):
    """A problem the user can fix; the message says what and where."""


@dataclasses.dataclass(frozen=True)
class Settings:
    """Sizes of one quickstart run. An unfinished run is resumed only under equal settings."""

    quick: bool
    """The reduced CI run."""
    pretrain_steps: int
    """Pretraining steps."""
    finetune_epochs: float
    """Fine-tuning epochs."""
    vocab_size: int
    """WordPiece vocab size asked of the learner (the small corpus gives somewhat fewer)."""
    max_seq_length: int
    """T of the pretraining examples."""
    hidden_size: int
    """D of the discriminator (the generator is a quarter as wide)."""
    num_hidden_layers: int
    """Encoder blocks."""
    num_attention_heads: int
    """Heads, half self-attention and half span convolution (head_ratio 2)."""
    embedding_size: int
    """E, projected up to D."""
    pretrain_batch_size: int
    """Pretraining batch."""
    pretrain_learning_rate: float
    """Peak learning rate (10% warmup, then linear decay to 0)."""
    iterations_per_loop: int
    """Steps between progress lines (and TensorBoard points)."""
    task_sizes: tuple
    """Built-in task examples: (train, dev, test)."""
    finetune_max_seq_length: int
    """T of the fine-tuning examples (the task's sentences are short)."""
    finetune_batch_size: int
    """Fine-tuning batch."""
    finetune_learning_rate: float
    """Fine-tuning peak learning rate."""
    required_free_mb: int
    """Free disk space asked for before starting."""
    seed: int = 0
    """Seed of the built-in task, and of the runs."""

    @property
    def intermediate_size(self) -> int:
        return 4 * self.hidden_size

    def model_overrides(self) -> dict:
        return {"hidden_size": self.hidden_size, "num_hidden_layers": self.num_hidden_layers,
                "num_attention_heads": self.num_attention_heads, "intermediate_size": self.intermediate_size,
                "max_position_embeddings": self.max_seq_length}


_QUICK = dict(pretrain_steps=40, finetune_epochs=3.0, vocab_size=2000, max_seq_length=64, hidden_size=64,
              num_hidden_layers=1, num_attention_heads=4, embedding_size=32, pretrain_batch_size=16,
              pretrain_learning_rate=2e-3, iterations_per_loop=5, task_sizes=(960, 160, 40),
              finetune_max_seq_length=48, finetune_batch_size=32, finetune_learning_rate=2e-3, required_free_mb=100)
_DEFAULT = dict(pretrain_steps=300, finetune_epochs=3.0, vocab_size=4000, max_seq_length=128, hidden_size=128,
                num_hidden_layers=2, num_attention_heads=4, embedding_size=64, pretrain_batch_size=32,
                pretrain_learning_rate=1e-3, iterations_per_loop=10, task_sizes=(2000, 400, 200),
                finetune_max_seq_length=48, finetune_batch_size=32, finetune_learning_rate=1e-3, required_free_mb=200)


def make_settings(quick: bool, pretrain_steps: int | None, finetune_epochs: float | None) -> Settings:
    """The --quick or default sizes, with the user's --pretrain_steps and --finetune_epochs."""
    values = dict(_QUICK if quick else _DEFAULT)
    if pretrain_steps is not None:
        if pretrain_steps < 1:
            raise QuickstartError(f"--pretrain_steps must be at least 1, got {pretrain_steps}")
        values["pretrain_steps"] = pretrain_steps
    if finetune_epochs is not None:
        if not finetune_epochs > 0:
            raise QuickstartError(f"--finetune_epochs must be positive, got {finetune_epochs}")
        values["finetune_epochs"] = float(finetune_epochs)
    return Settings(quick=quick, **values)


def settings_dict(settings: Settings) -> dict:
    return json.loads(json.dumps(dataclasses.asdict(settings)))  # tuples as lists, as read back from JSON


def pretraining_hparams(settings: Settings, vocab_size: int) -> dict:
    steps = settings.pretrain_steps
    return {"model_size": "small", "vocab_size": vocab_size, "embedding_size": settings.embedding_size,
            "model_hparam_overrides": settings.model_overrides(), "max_seq_length": settings.max_seq_length,
            "train_batch_size": settings.pretrain_batch_size, "learning_rate": settings.pretrain_learning_rate,
            "num_train_steps": steps, "num_warmup_steps": max(1, steps // 10),
            "iterations_per_loop": settings.iterations_per_loop,
            "save_checkpoints_steps": max(settings.iterations_per_loop, steps // 3), "seed": settings.seed}


def finetuning_hparams(settings: Settings, vocab_size: int) -> dict:
    return {"model_size": "small", "task_names": [TASK], "vocab_size": vocab_size,
            "embedding_size": settings.embedding_size, "model_hparam_overrides": settings.model_overrides(),
            "max_seq_length": settings.finetune_max_seq_length, "train_batch_size": settings.finetune_batch_size,
            "eval_batch_size": settings.finetune_batch_size, "predict_batch_size": settings.finetune_batch_size,
            "learning_rate": settings.finetune_learning_rate, "num_train_epochs": settings.finetune_epochs,
            "iterations_per_loop": settings.iterations_per_loop, "seed": settings.seed}
