"""Writes TF1-style checkpoints (tf.compat.v1 Saver) with the original release's names, for tests."""
import os

import numpy as np
import tensorflow as tf


def write_tf1_checkpoint(params, checkpoint_prefix, global_step=0, with_adam_slots=False):
    """Saves `params` the way the original TF1.15 release's checkpoints hold them.

    Builds a private `tf.compat.v1` graph (eager mode stays on in the rest of the process),
    creates one variable per dict key with exactly that name, initialises it from the given
    value, and saves with `tf.compat.v1.train.Saver`, which also writes the `checkpoint`
    state file so `tf.train.latest_checkpoint(dirname)` finds the result.

    Args:
      params: {original variable name: array}; dtypes are kept (float32 normally).
      checkpoint_prefix: path prefix such as `<dir>/model.ckpt`; the directory is created.
      global_step: when an int, an int64 scalar `global_step` variable is saved and the
        files are named `<prefix>-<global_step>`; when None, neither happens.
      with_adam_slots: also save `<name>/adam_m` = -0.5·value and `<name>/adam_v` = value²
        for every name, as the original AdamWeightDecayOptimizer's slots (no optimizer-name
        prefix, no beta powers). The values are fixed functions of the weight so that tests
        can check them and a loader that picks up a slot instead of the weight is caught.

    Returns:
      The prefix actually written, e.g. `<dir>/model.ckpt-0`.
    """
    if global_step is not None and "global_step" in params:
        raise ValueError("params already has 'global_step'; pass global_step=None to keep it")
    values = {}
    if global_step is not None:
        values["global_step"] = np.asarray(global_step, np.int64)
    for name, value in params.items():
        value = np.asarray(value)
        values[name] = value
        if with_adam_slots:
            values[f"{name}/adam_m"] = (-0.5 * value).astype(value.dtype)
            values[f"{name}/adam_v"] = np.square(value).astype(value.dtype)

    directory = os.path.dirname(os.path.abspath(checkpoint_prefix))
    os.makedirs(directory, exist_ok=True)
    graph = tf.Graph()
    with graph.as_default():
        feeds = {}
        variables = []
        for name, value in values.items():
            # Initialise from a placeholder, so large tables are not baked into the .meta file.
            placeholder = tf.compat.v1.placeholder(tf.as_dtype(value.dtype), value.shape)
            # get_variable accepts '/' in the name and keeps it verbatim (root scope).
            variable = tf.compat.v1.get_variable(name, initializer=placeholder)
            if variable.op.name != name:
                raise ValueError(f"variable created as {variable.op.name!r}, wanted {name!r}")
            feeds[placeholder] = value
            variables.append(variable)
        saver = tf.compat.v1.train.Saver(variables)
        with tf.compat.v1.Session(graph=graph) as session:
            session.run(tf.compat.v1.variables_initializer(variables), feed_dict=feeds)
            written = saver.save(session, checkpoint_prefix, global_step=global_step)
    return written
