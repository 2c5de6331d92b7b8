"""The encoder + MLM head + AdamW train step, written once in keras.ops, compiled per backend.

jax: jax.jit of a stateless step (model.stateless_call, jax.value_and_grad, the optimizer's
stateless_apply), its state donated. torch: the step as Keras's own torch trainer runs it
(backward, then optimizer.apply), eager and under torch.compile. Every call of a step returns
the loss as a Python float, so the device has finished when the clock stops.

Legend: B batch, T length, P masked positions, D hidden, V vocab size.
"""

import keras
from keras import ops

from benchmarks.options import POLICIES
from convbert_tf import ConvBertConfig, ConvBertEncoder
from convbert_tf.layers import MaskedLMHead


class MaskedLMModel(keras.Model):
    """loss = mean cross-entropy of MaskedLMHead(encoder states at P masked positions)."""

    def __init__(self, config: ConvBertConfig, **kwargs):
        super().__init__(**kwargs)
        self.encoder = ConvBertEncoder(config, dtype=self.dtype_policy)
        self.head = MaskedLMHead(self.encoder.embeddings, activation=config.hidden_act,
                                 initializer_range=config.initializer_range, dtype=self.dtype_policy,
                                 name="generator_predictions")

    def call(self, batch, training=False):
        states = self.encoder({k: batch[k] for k in ("input_ids", "input_mask", "segment_ids")},
                              training=training)["sequence_output"]  # [B, T, D]
        positions = batch["masked_lm_positions"]  # [B, P]
        index = ops.broadcast_to(ops.expand_dims(positions, -1),
                                 tuple(positions.shape) + (states.shape[-1],))
        logits = self.head(ops.take_along_axis(states, index, axis=1))  # [B, P, V]
        losses = keras.losses.sparse_categorical_crossentropy(batch["masked_lm_ids"], logits, from_logits=True)
        return ops.mean(ops.cast(losses, "float32"))


def build(config: ConvBertConfig, dtype: str, batch: dict):
    """The model (built on `batch`) and its AdamW, seeded."""
    keras.utils.set_random_seed(0)
    model = MaskedLMModel(config, dtype=POLICIES[dtype])
    model(batch, training=False)
    optimizer = keras.optimizers.AdamW(learning_rate=1e-4, weight_decay=0.01, epsilon=1e-6)
    optimizer.build(model.trainable_variables)
    return model, optimizer


def jax_step(model, optimizer, batch: dict):
    """A callable: one jitted stateless train step on `batch` (kept on the device)."""
    import jax

    data = {k: jax.device_put(v) for k, v in batch.items()}

    def step(state, data):
        trainable, non_trainable, optimizer_vars = state

        def loss_of(trainable):
            return model.stateless_call(trainable, non_trainable, data, training=True)

        (loss, non_trainable), grads = jax.value_and_grad(loss_of, has_aux=True)(trainable)
        trainable, optimizer_vars = optimizer.stateless_apply(optimizer_vars, grads, trainable)
        return loss, (trainable, non_trainable, optimizer_vars)

    compiled = jax.jit(step, donate_argnums=0)
    state = [[v.value for v in model.trainable_variables], [v.value for v in model.non_trainable_variables],
             [v.value for v in optimizer.variables]]

    def call():
        loss, new_state = compiled(tuple(state), data)
        state[:] = new_state
        return float(loss)

    return call


def torch_step(model, optimizer, batch: dict, compiled: bool):
    """A callable: one torch train step on `batch`, eager or under torch.compile."""
    import torch

    data = {k: ops.convert_to_tensor(v) for k, v in batch.items()}
    variables = model.trainable_variables

    def step():
        model.zero_grad()
        loss = model(data, training=True)
        loss.backward()
        grads = [v.value.grad for v in variables]
        with torch.no_grad():
            optimizer.apply(grads, variables)
        return loss.detach()

    run = torch.compile(step) if compiled else step
    return lambda: float(run())
