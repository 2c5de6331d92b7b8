"""A toy masked-LM model stepped by benchmarks/backends/keras_step.py on KERAS_BACKEND (a test helper).

Prints `LOSSES l1 l2 l3 l4` per step variant: jax jit on jax; torch eager and compiled on torch.
Weights come from a NumPy generator, so every backend starts from the same numbers.
"""

import keras
import numpy as np
from keras import ops

from benchmarks.backends import keras_step
from benchmarks.backends.worker import synthetic_batch


class Toy(keras.Model):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.embedding = keras.layers.Embedding(100, 16)
        self.dense = keras.layers.Dense(100)

    def call(self, batch, training=False):
        states = ops.tanh(self.embedding(batch["input_ids"]))
        positions = batch["masked_lm_positions"]
        index = ops.broadcast_to(ops.expand_dims(positions, -1), tuple(positions.shape) + (16,))
        logits = self.dense(ops.take_along_axis(states, index, axis=1))
        return ops.mean(keras.losses.sparse_categorical_crossentropy(batch["masked_lm_ids"], logits, from_logits=True))


def stepped(variant: str) -> list:
    batch = synthetic_batch(4, 16, 3, 100)
    model = Toy()
    model(batch)
    rng = np.random.default_rng(0)
    model.set_weights([rng.normal(0, 0.5, w.shape).astype("float32") for w in model.get_weights()])
    optimizer = keras.optimizers.AdamW(learning_rate=1e-2, weight_decay=0.01, epsilon=1e-6)
    optimizer.build(model.trainable_variables)
    step = (keras_step.jax_step(model, optimizer, batch) if variant == "jit"
            else keras_step.torch_step(model, optimizer, batch, compiled=variant == "compiled"))
    return [step() for _ in range(4)]


if __name__ == "__main__":
    variants = ("jit",) if keras.backend.backend() == "jax" else ("eager", "compiled")
    for variant in variants:
        print("LOSSES " + " ".join(f"{loss:.8f}" for loss in stepped(variant)))
