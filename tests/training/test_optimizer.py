"""Tests of training/optimizer.py and training/learning_rates.py against NumPy twins of the formulas
of ELECTRA's model/optimization.py."""

import contextlib
import functools
import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf
from repo_paths import ROOT as REPO_ROOT

from convbert_tf.training.learning_rates import WarmupPolynomialDecay, layerwise_lr_multipliers
from convbert_tf.training.optimizer import AdamWeightDecay



# ----------------------------------------------------------------------------- twins
def schedule_reference(step, lr0, total, warmup_steps=0, warmup_proportion=0.0, power=1.0):
    """NumPy twin of lr(t) = lr0·(1 − min(t,T)/T)^power · min(1, t/W)."""
    warmup = max(total * warmup_proportion, warmup_steps)
    lr = lr0 * (1.0 - min(step, total) / total) ** power
    if warmup > 0:
        lr *= min(1.0, step / warmup)
    return lr


def adamw_reference(params, grad_steps, lrs, decay_flags, multipliers, wd=0.01,
                    beta_1=0.9, beta_2=0.999, eps=1e-6, clip_norm=1.0):
    """NumPy twin of the original AdamWeightDecayOptimizer with global-norm clipping.

    params: list of arrays; grad_steps: list (per step) of lists of gradients; lrs: lr per
    step. Returns the final params and moments (float64).
    """
    params = [np.array(p, np.float64) for p in params]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    for grads, lr in zip(grad_steps, lrs):
        grads = [np.asarray(g, np.float64) for g in grads]
        norm = np.sqrt(sum(np.sum(g * g) for g in grads))
        if clip_norm is not None:
            grads = [g * clip_norm / max(norm, clip_norm) for g in grads]
        for i, g in enumerate(grads):
            m[i] = beta_1 * m[i] + (1 - beta_1) * g
            v[i] = beta_2 * v[i] + (1 - beta_2) * g * g
            update = m[i] / (np.sqrt(v[i]) + eps)
            if decay_flags[i]:
                update = update + wd * params[i]
            params[i] = params[i] - lr * multipliers[i] * update
    return params, m, v


# ---------------------------------------------------------------------------- helpers
def make_variable(path, value):
    """A Keras variable whose `path` is exactly `path` (nested name scopes)."""
    *scopes, name = path.split("/")
    with contextlib.ExitStack() as stack:
        for scope in scopes:
            stack.enter_context(keras.name_scope(scope))
        variable = keras.Variable(np.asarray(value, np.float32), name=name)
    assert variable.path == path
    return variable


PATHS = (
    "convbert/embeddings/word_embeddings/embeddings",
    "convbert/encoder/layer_0/attention/query/kernel",
    "convbert/encoder/layer_0/attention/query/bias",
    "convbert/encoder/layer_0/attention/output/LayerNorm/gamma",
    "convbert/encoder/layer_0/ffn/layer_norm/beta",
    "task_specific/classifier/kernel",
)
DECAYED = (True, True, False, False, False, True)  # LayerNorm, layer_norm, bias excluded
SHAPES = ((6, 3), (3, 3), (3,), (3,), (3,), (3, 2))


def make_problem(seed=0, grad_scale=1.0, num_steps=1):
    rng = np.random.default_rng(seed)
    init = [rng.normal(size=s).astype(np.float32) for s in SHAPES]
    grads = [[(grad_scale * rng.normal(size=s)).astype(np.float32) for s in SHAPES]
             for _ in range(num_steps)]
    return init, grads


# --------------------------------------------------------------------------- schedule
@pytest.mark.parametrize(
    "kwargs",
    [
        dict(warmup_steps=5, warmup_proportion=0.1),  # W = max(10, 5) = 10
        dict(warmup_steps=30, warmup_proportion=0.1),  # W = 30
        dict(warmup_proportion=0.15, power=2.0),  # W = 15, quadratic decay
        dict(),  # no warmup
    ],
)
def test_schedule_matches_numpy(kwargs):
    schedule = WarmupPolynomialDecay(1e-3, num_train_steps=100, **kwargs)
    for step in (0, 1, 5, 9, 10, 11, 15, 29, 30, 50, 99, 100, 150):
        expected = schedule_reference(step, 1e-3, 100, **kwargs)
        got = float(schedule(tf.constant(step, tf.int64)))
        np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-12, err_msg=f"t={step}")


def test_schedule_peak_is_reduced_by_multiplied_warmup():
    schedule = WarmupPolynomialDecay(1.0, num_train_steps=100, warmup_proportion=0.1)
    assert schedule.warmup_length == 10.0
    np.testing.assert_allclose(float(schedule(10)), 0.9, rtol=1e-6)  # lr·(1 − W/T), not lr
    assert float(schedule(0)) == 0.0


def test_schedule_config_round_trip():
    schedule = WarmupPolynomialDecay(2e-4, 1000, warmup_steps=7, warmup_proportion=0.05,
                                     power=1.5)
    restored = keras.optimizers.schedules.deserialize(
        keras.optimizers.schedules.serialize(schedule))
    assert isinstance(restored, WarmupPolynomialDecay)
    assert restored.get_config() == schedule.get_config()
    with pytest.raises(ValueError, match="num_train_steps"):
        WarmupPolynomialDecay(1e-3, 0)


# ---------------------------------------------------------------------- AdamWeightDecay
def test_weight_decay_exclusion_by_path():
    variables = [make_variable(p, np.zeros(s)) for p, s in zip(PATHS, SHAPES)]
    optimizer = AdamWeightDecay(learning_rate=0.1)
    optimizer.build(variables)
    assert optimizer._uses_weight_decay == DECAYED


@pytest.mark.parametrize("grad_scale", [0.01, 10.0])  # unclipped, then clipped (norm > 1)
def test_one_step_matches_numpy(grad_scale):
    init, grads = make_problem(grad_scale=grad_scale)
    norm = np.sqrt(sum(np.sum(np.square(g)) for g in grads[0]))
    assert (norm > 1.0) == (grad_scale > 1.0)
    variables = [make_variable(p, x) for p, x in zip(PATHS, init)]
    optimizer = AdamWeightDecay(learning_rate=0.1)
    optimizer.apply(grads[0], variables)
    expected, m, v = adamw_reference(init, grads, [0.1], DECAYED, [1.0] * len(PATHS))
    for variable, want in zip(variables, expected):
        np.testing.assert_allclose(variable.numpy(), want, rtol=1e-5, atol=1e-6,
                                   err_msg=variable.path)
    for slot, want in zip(optimizer._momentums, m):
        np.testing.assert_allclose(slot.numpy(), want, rtol=1e-5, atol=1e-9)
    for slot, want in zip(optimizer._velocities, v):
        np.testing.assert_allclose(slot.numpy(), want, rtol=1e-5, atol=1e-12)
    assert int(optimizer.iterations) == 1


def test_no_bias_correction():
    """One unclipped step on a non-decayed variable moves it by lr·0.1·g/(√0.001·|g| + ε).

    Bias-corrected Adam would move it by ≈ lr; the original moves it by ≈ 3.16·lr.
    """
    bias = make_variable("dense/bias", np.zeros(2))
    optimizer = AdamWeightDecay(learning_rate=0.01, clip_norm=None)
    optimizer.apply([tf.constant([0.5, -0.5])], [bias])
    step = 0.01 * 0.1 * 0.5 / (np.sqrt(0.001) * 0.5 + 1e-6)
    np.testing.assert_allclose(bias.numpy(), [-step, step], rtol=1e-5)
    assert abs(step / 0.01 - 3.162) < 1e-2


def test_several_steps_with_schedule_and_multipliers():
    init, grads = make_problem(seed=1, grad_scale=3.0, num_steps=4)
    multipliers = layerwise_lr_multipliers(PATHS, num_layers=1, decay=0.5)
    schedule = WarmupPolynomialDecay(0.05, num_train_steps=10, warmup_steps=2)
    variables = [make_variable(p, x) for p, x in zip(PATHS, init)]
    optimizer = AdamWeightDecay(learning_rate=schedule, lr_multipliers=multipliers)
    for step_grads in grads:
        optimizer.apply(step_grads, variables)
    lrs = [schedule_reference(t, 0.05, 10, warmup_steps=2) for t in range(4)]
    assert lrs[0] == 0.0  # the first update happens at t = 0, with lr 0 during warmup
    expected, _, _ = adamw_reference(init, grads, lrs, DECAYED,
                                     [multipliers[p] for p in PATHS])
    for variable, want in zip(variables, expected):
        np.testing.assert_allclose(variable.numpy(), want, rtol=1e-5, atol=1e-6,
                                   err_msg=variable.path)


@pytest.mark.parametrize("mode", ["eager", "tf.function"])
def test_fused_update_matches_op_by_op(mode):
    """The default fused (XLA) update against the op-by-op reference: weights and both slots
    after several clipped steps with decay, exclusions, multipliers and a schedule."""
    init, grads = make_problem(seed=3, grad_scale=3.0, num_steps=5)
    multipliers = layerwise_lr_multipliers(PATHS, num_layers=1, decay=0.5)
    schedule = WarmupPolynomialDecay(0.05, num_train_steps=10, warmup_steps=2)
    runs = {}
    for fused in (True, False):
        variables = [make_variable(p, x) for p, x in zip(PATHS, init)]
        optimizer = AdamWeightDecay(learning_rate=schedule, lr_multipliers=multipliers,
                                    fused_update=fused)
        optimizer.build(variables)
        step = functools.partial(optimizer.apply, trainable_variables=variables)
        if mode == "tf.function":
            step = tf.function(lambda step_grads, apply=step: apply(step_grads))
        for step_grads in grads:
            step([tf.constant(g) for g in step_grads])
        slots = [optimizer._momentums[i] for i in range(len(PATHS))] + [
            optimizer._velocities[i] for i in range(len(PATHS))]
        runs[fused] = [x.numpy() for x in variables + slots]
    moved = [np.max(np.abs(after - before)) for after, before in zip(runs[True], init)]
    assert min(moved) > 1e-3  # every variable was updated
    for fused_value, reference in zip(runs[True], runs[False]):
        np.testing.assert_allclose(fused_value, reference, rtol=1e-6, atol=1e-7)


def test_fused_clipping_of_a_non_finite_gradient_matches_op_by_op():
    """tf.clip_by_global_norm turns every gradient into NaN when the norm is not finite; the
    fused update then leaves the same NaN weights as the op-by-op one."""
    weights = {}
    for fused in (True, False):
        variables = [make_variable(p, np.ones(s)) for p, s in zip(PATHS[:2], SHAPES[:2])]
        grads = [tf.fill(SHAPES[0], np.inf), tf.ones(SHAPES[1])]
        AdamWeightDecay(learning_rate=0.1, fused_update=fused).apply(grads, variables)
        weights[fused] = [v.numpy() for v in variables]
    assert all(np.isnan(w).all() for w in weights[False])
    for a, b in zip(weights[True], weights[False]):
        np.testing.assert_array_equal(np.isnan(a), np.isnan(b))


def test_lr_multipliers_missing_path_is_an_error():
    variables = [make_variable(p, np.zeros(s)) for p, s in zip(PATHS, SHAPES)]
    optimizer = AdamWeightDecay(learning_rate=0.1, lr_multipliers={PATHS[0]: 1.0})
    with pytest.raises(ValueError, match="layer_0/attention/query/kernel"):
        optimizer.build(variables)


def test_unknown_variable_and_rejected_keras_options():
    known = make_variable("a/kernel", np.zeros(2))
    other = make_variable("b/kernel", np.zeros(2))
    optimizer = AdamWeightDecay(learning_rate=0.1)
    optimizer.build([known])
    with pytest.raises(ValueError, match="b/kernel"):
        optimizer.apply([tf.ones(2)], [other])
    with pytest.raises(TypeError):
        AdamWeightDecay(learning_rate=0.1, global_clipnorm=1.0)
    with pytest.raises(NotImplementedError, match="weight_decay_exclude_patterns"):
        optimizer.exclude_from_weight_decay(var_names=["bias"])


def test_optimizer_config_round_trip():
    schedule = WarmupPolynomialDecay(1e-3, 100, warmup_proportion=0.1)
    optimizer = AdamWeightDecay(learning_rate=schedule, weight_decay_rate=0.02,
                                clip_norm=2.0, lr_multipliers={"x/kernel": 0.5},
                                weight_decay_exclude_patterns=["bias"], fused_update=False)
    restored = keras.optimizers.deserialize(keras.optimizers.serialize(optimizer))
    assert isinstance(restored, AdamWeightDecay)
    config = restored.get_config()
    assert config["learning_rate"] == optimizer.get_config()["learning_rate"]
    assert {k: v for k, v in config.items() if k != "learning_rate"} == {
        k: v for k, v in optimizer.get_config().items() if k != "learning_rate"}
    assert config["fused_update"] is False
    with pytest.raises(ValueError, match="callable"):
        AdamWeightDecay(lr_multipliers=lambda path: 1.0).get_config()


def test_jit_compiled_step_matches_eager():
    init, grads = make_problem(seed=2, grad_scale=5.0, num_steps=2)
    eager_vars = [make_variable(p, x) for p, x in zip(PATHS, init)]
    jit_vars = [make_variable(p, x) for p, x in zip(PATHS, init)]
    eager_opt = AdamWeightDecay(learning_rate=0.1)
    jit_opt = AdamWeightDecay(learning_rate=0.1)
    jit_opt.build(jit_vars)

    @tf.function(jit_compile=True)
    def jit_step(step_grads):
        jit_opt.apply(step_grads, jit_vars)

    for step_grads in grads:
        eager_opt.apply(step_grads, eager_vars)
        jit_step([tf.constant(g) for g in step_grads])
    for a, b in zip(eager_vars, jit_vars):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6)
    assert int(jit_opt.iterations) == 2


@pytest.mark.parametrize("restore_before_build", [False, True])
def test_checkpoint_round_trip_of_slots(tmp_path, restore_before_build):
    init, grads = make_problem(seed=3, grad_scale=2.0, num_steps=3)
    variables = [make_variable(p, x) for p, x in zip(PATHS, init)]
    optimizer = AdamWeightDecay(learning_rate=0.1)
    for step_grads in grads[:2]:
        optimizer.apply(step_grads, variables)
    saved = tf.train.Checkpoint(optimizer=optimizer, variables=variables).save(
        str(tmp_path / "ckpt"))

    fresh_vars = [make_variable(p, np.zeros_like(x)) for p, x in zip(PATHS, init)]
    fresh_opt = AdamWeightDecay(learning_rate=0.1)
    checkpoint = tf.train.Checkpoint(optimizer=fresh_opt, variables=fresh_vars)
    if restore_before_build:
        status = checkpoint.restore(saved)
        fresh_opt.build(fresh_vars)
    else:
        fresh_opt.build(fresh_vars)
        status = checkpoint.restore(saved)
    status.assert_existing_objects_matched()
    assert int(fresh_opt.iterations) == 2
    for slots, fresh_slots in ((optimizer._momentums, fresh_opt._momentums),
                               (optimizer._velocities, fresh_opt._velocities)):
        for a, b in zip(slots, fresh_slots):
            assert np.any(a.numpy() != 0)
            np.testing.assert_array_equal(a.numpy(), b.numpy())
    optimizer.apply(grads[2], variables)
    fresh_opt.apply(grads[2], fresh_vars)
    for a, b in zip(variables, fresh_vars):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


# ------------------------------------------------------------------ layerwise multipliers
LAYERWISE_PATHS = (
    "convbert/embeddings/word_embeddings/embeddings",
    "convbert/embeddings_project/kernel",
    "convbert/encoder/layer_0/attention/self/query/kernel",
    "convbert/encoder/layer_1/ffn/intermediate/bias",
    "convbert/encoder/layer_2/ffn/output/LayerNorm/gamma",
    "task_specific/classifier/kernel",
    "convbert/layer_norm/gamma",  # "layer_norm" is not an encoder layer index: a head
)


@pytest.mark.parametrize(
    "off_by_one,exponents",
    [
        (False, (4, 4, 3, 2, 1, 0, 0)),  # fixed: decay^(L+1−depth), top layer decay¹
        (True, (5, 5, 4, 3, 2, 0, 0)),  # original: decay^(L+2−depth), top layer decay²
    ],
)
def test_layerwise_multipliers_variable_by_variable(off_by_one, exponents):
    got = layerwise_lr_multipliers(LAYERWISE_PATHS, num_layers=3, decay=0.8,
                                   reproduce_original_off_by_one=off_by_one)
    assert list(got) == list(LAYERWISE_PATHS)
    for path, exponent in zip(LAYERWISE_PATHS, exponents):
        np.testing.assert_allclose(got[path], 0.8 ** exponent, rtol=1e-12, err_msg=path)


def test_layerwise_multipliers_errors_and_custom_patterns():
    with pytest.raises(ValueError, match="encoder/layer_3/.*num_layers is 3"):
        layerwise_lr_multipliers(["encoder/layer_3/dense/kernel"], num_layers=3, decay=0.8)
    with pytest.raises(ValueError, match="'pooler/dense/kernel'"):
        layerwise_lr_multipliers(["pooler/dense/kernel"], num_layers=3, decay=0.8,
                                 head_pattern=r"^task_specific/")
    got = layerwise_lr_multipliers(
        ["emb/word", "blocks/block_1/kernel", "task_specific/kernel"], num_layers=2,
        decay=0.5, embeddings_pattern=r"^emb/", layer_pattern=r"block_(\d+)",
        head_pattern=r"^task_specific/")
    assert got == {"emb/word": 0.125, "blocks/block_1/kernel": 0.5, "task_specific/kernel": 1.0}


# --------------------------------------------------------------------- tf.distribute
MIRRORED_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

    import keras
    from convbert_tf.training.learning_rates import WarmupPolynomialDecay
    from convbert_tf.training.optimizer import AdamWeightDecay

    GLOBAL_BATCH = 8
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, GLOBAL_BATCH, 4)).astype("float32")  # 3 steps
    y = rng.normal(size=(3, GLOBAL_BATCH, 3)).astype("float32")

    def run(strategy):
        with strategy.scope():
            model = keras.Sequential([
                keras.Input((4,)),
                keras.layers.Dense(3, name="dense", kernel_initializer="ones"),
                keras.layers.LayerNormalization(name="LayerNorm"),
            ])
            optimizer = AdamWeightDecay(
                learning_rate=WarmupPolynomialDecay(0.05, 10, warmup_steps=2),
                lr_multipliers=lambda path: 0.5 if "dense" in path else 1.0)
            optimizer.build(model.trainable_variables)
        replicas = strategy.num_replicas_in_sync
        per_replica = GLOBAL_BATCH // replicas

        @tf.function
        def train_step(xb, yb):
            def replica_step(xr, yr):
                with tf.GradientTape() as tape:
                    # scaled up so that the global norm (about 1e2) is clipped
                    per_example = 50.0 * tf.reduce_sum(tf.square(model(xr) - yr), -1)
                    loss = tf.nn.compute_average_loss(per_example,
                                                      global_batch_size=GLOBAL_BATCH)
                grads = tape.gradient(loss, model.trainable_variables)
                optimizer.apply(grads, model.trainable_variables)
                return tf.linalg.global_norm(grads)
            return strategy.run(replica_step, args=(xb, yb))

        norms = []
        for step in range(3):
            def split(values):
                return strategy.experimental_distribute_values_from_function(
                    lambda ctx: values[ctx.replica_id_in_sync_group * per_replica:
                                       (ctx.replica_id_in_sync_group + 1) * per_replica])
            norm = train_step(split(x[step]), split(y[step]))
            norms.append([float(n) for n in strategy.experimental_local_results(norm)])
        slots = [np.asarray(s.numpy()).tolist()
                 for s in optimizer._momentums + optimizer._velocities]
        return {
            "replicas": replicas,
            "weights": [np.asarray(w).tolist() for w in model.get_weights()],
            "slots": slots,
            "iterations": int(optimizer.iterations.numpy()),
            "local_grad_norms": norms,
        }

    devices = [d.name for d in tf.config.list_logical_devices("CPU")]
    result = {
        "one": run(tf.distribute.OneDeviceStrategy(devices[0])),
        "mirrored": run(tf.distribute.MirroredStrategy(devices)),
    }
    with open(sys.argv[1], "w") as f:
        json.dump(result, f)
    """
)


def test_mirrored_strategy_step_equals_one_device(tmp_path):
    """Two logical CPUs under MirroredStrategy update exactly as one device (in a subprocess,
    since logical devices must be configured before TensorFlow initializes them)."""
    out = tmp_path / "result.json"
    env = dict(os.environ, PYTHONPATH=REPO_ROOT, TF_CPP_MIN_LOG_LEVEL="2")
    proc = subprocess.run([sys.executable, "-c", MIRRORED_SCRIPT, str(out)], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-4000:]
    result = json.loads(out.read_text())
    one, mirrored = result["one"], result["mirrored"]
    assert (one["replicas"], mirrored["replicas"]) == (1, 2)
    assert one["iterations"] == mirrored["iterations"] == 3
    # Clipping is active: the one-device global norm exceeds 1, so clipping each replica's
    # gradients before summing (Keras's global_clipnorm) would give another update.
    assert min(n[0] for n in one["local_grad_norms"]) > 1.0
    for a, b in zip(one["weights"] + one["slots"], mirrored["weights"] + mirrored["slots"]):
        np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=1e-5, atol=1e-6)
