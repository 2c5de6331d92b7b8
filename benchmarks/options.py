"""What a benchmark run measures: the options of benchmarks/run.py, the shapes, the sections.

Imported by every other benchmarks module; imports nothing of the package.
"""

import dataclasses

# Shapes of the issue: train steps at 16 x 128, inference at 1 x 128 and 32 x 128, the
# attention layer at hidden 768, batch 16, lengths 128 and 512.
TRAIN_BATCH, SEQ_LENGTH = 16, 128
LATENCY_BATCH, THROUGHPUT_BATCH = 1, 32
LAYER_HIDDEN, LAYER_HEADS, LAYER_BATCH, LAYER_LENGTHS = 768, 12, 16, (128, 512)
STEPS_PER_CALL = 2  # train steps per timed call of the (compiled) train loop

POLICIES = {"float32": "float32", "bfloat16": "mixed_bfloat16", "float16": "mixed_float16"}
# What run_all can measure: the attention layer and window sum, the encoder block with and
# without its fused ops, per-size train steps and inference, SavedModel latency, the input
# pipeline, mixed precision.
SECTIONS = ("layer", "fusions", "sizes", "serving", "pipeline", "precision")


@dataclasses.dataclass(frozen=True)
class Options:
    """What to run; see benchmarks/run.py for the flags."""
    sizes: tuple = ("small", "medium-small")
    repeats: int = 5
    dtype: str = "float32"
    jit_compile: bool = False
    device: str = "/CPU:0"
    threads: int = 2
    inter_op_threads: int = 2
    conv_implementation: str = "shifted_xla"
    quick: bool = False
    precision_steps: int = 40
    sections: tuple = SECTIONS


@dataclasses.dataclass(frozen=True)
class Shapes:
    train_batch: int = TRAIN_BATCH
    seq_length: int = SEQ_LENGTH
    latency_batch: int = LATENCY_BATCH
    throughput_batch: int = THROUGHPUT_BATCH
    layer_hidden: int = LAYER_HIDDEN
    layer_heads: int = LAYER_HEADS
    layer_batch: int = LAYER_BATCH
    layer_lengths: tuple = LAYER_LENGTHS


# A tiny model and tiny shapes for --quick (a smoke run, not a measurement).
QUICK_SHAPES = Shapes(train_batch=4, seq_length=32, throughput_batch=4, layer_hidden=64, layer_heads=4,
                      layer_batch=2, layer_lengths=(32, 64))
QUICK_OVERRIDES = {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
                   "intermediate_size": 128, "max_position_embeddings": 64}
QUICK_VOCAB = 1000
