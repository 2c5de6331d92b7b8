"""Fine-tuning heads and losses against NumPy, and layerwise LR multipliers variable by variable."""

import numpy as np
import pytest
import tensorflow as tf

from convbert_tf import ConvBertConfig, ConvBertEncoder
from convbert_tf.finetuning.trainer import empty_label_arrays
from convbert_tf.finetuning.tasks.chunk import ChunkTask
from convbert_tf.finetuning.tasks.registry import get_task
from convbert_tf.models.finetuning import FinetuningModel
from convbert_tf.training.learning_rates import layerwise_lr_multipliers

CONFIG = ConvBertConfig(vocab_size=30, hidden_size=16, num_hidden_layers=3, num_attention_heads=2,
                        intermediate_size=32, embedding_size=8, max_position_embeddings=16, conv_kernel_size=3)
# cola: 2 classes; sts: regression; squad: QA; chunk with one chunk type: 5 tags (O, B/I/E/S-NP).
TASKS = [get_task("cola"), get_task("sts"), get_task("squad"), ChunkTask("chunk", chunk_types=("NP",))]


@pytest.fixture(scope="module")
def model():
    return FinetuningModel(ConvBertEncoder(CONFIG), TASKS, beam_size=3)


def batch(rng, task_ids):
    n, t = len(task_ids), 8
    arrays = empty_label_arrays(n, t)
    arrays.update(input_ids=rng.integers(1, 30, (n, t)).astype(np.int32),
                  input_mask=np.ones((n, t), np.int32),
                  segment_ids=np.array([[0] * 3 + [1] * 5] * n, np.int32))
    arrays["task_id"] = np.array(task_ids, np.int32)
    arrays["label_ids"] = rng.integers(0, 2, n).astype(np.int32)
    arrays["label_value"] = rng.random(n).astype(np.float32)
    arrays["start_positions"] = np.array([3, 0, 4, 5][:n], np.int32)
    arrays["end_positions"] = np.array([4, 0, 6, 5][:n], np.int32)
    arrays["is_impossible"] = np.array([0, 1, 0, 0][:n], np.float32)
    arrays["tag_ids"] = rng.integers(0, 5, (n, t)).astype(np.int32)
    arrays["tag_weights"] = (rng.random((n, t)) < 0.5).astype(np.float32)
    return {k: tf.constant(v) for k, v in arrays.items()}


def log_softmax(x):
    x = x - x.max(-1, keepdims=True)
    return x - np.log(np.exp(x).sum(-1, keepdims=True))


def test_per_example_losses_use_each_examples_task(model):
    features = batch(np.random.default_rng(0), [0, 1, 2, 3])
    outputs = model(features, training=False)
    # The QA loss uses the end logits conditioned on the gold start (the training-mode head),
    # computed here without dropout.
    sequence = model.encoder({k: features[k] for k in ("input_ids", "input_mask", "segment_ids")})["sequence_output"]
    outputs["squad"] = model.head("squad")(sequence, features["input_mask"], features["segment_ids"],
                                           start_positions=features["start_positions"], training=True)
    losses = model.per_example_losses(features, outputs).numpy()
    f = {k: v.numpy() for k, v in features.items()}
    cola = log_softmax(outputs["cola"]["logits"].numpy()[0])
    np.testing.assert_allclose(losses[0], -cola[f["label_ids"][0]], rtol=1e-5)
    np.testing.assert_allclose(losses[1], (outputs["sts"]["logits"].numpy()[1] - f["label_value"][1]) ** 2, rtol=1e-5)
    tags = log_softmax(outputs["chunk"]["logits"].numpy()[3])
    w = f["tag_weights"][3]
    expected = -(w * tags[np.arange(8), f["tag_ids"][3]]).sum()  # summed over the tagged words, as the original
    np.testing.assert_allclose(losses[3], expected, rtol=1e-5)
    qa = outputs["squad"]
    start = log_softmax(qa["start_logits"].numpy()[2])[f["start_positions"][2]]
    end = log_softmax(qa["end_logits"].numpy()[2])[f["end_positions"][2]]
    logit = qa["answerable_logit"].numpy()[2]
    bce = np.log1p(np.exp(logit))  # label is_impossible = 0
    np.testing.assert_allclose(losses[2], -(start + end) / 2 + 0.5 * bce, rtol=1e-5)


def test_qa_head_masks_the_question_and_beams_are_consistent(model):
    features = batch(np.random.default_rng(1), [2, 2])
    out = model(features, training=False)["squad"]
    start_index = out["start_top_index"].numpy()
    # Only [CLS] (position 0) or context tokens (segment 1) can start an answer.
    assert np.all((start_index == 0) | (start_index >= 3))
    start_log_probs = log_softmax(out["start_logits"].numpy())
    np.testing.assert_allclose(out["start_top_log_probs"].numpy(),
                               np.take_along_axis(start_log_probs, start_index, 1), rtol=1e-5, atol=1e-5)
    assert out["end_top_index"].shape == (2, 3, 3)
    assert np.all(np.diff(out["end_top_log_probs"].numpy(), axis=-1) <= 1e-6)  # sorted beams


@pytest.mark.parametrize("off_by_one,top,embeddings", [(False, 0.8, 0.8 ** 4), (True, 0.8 ** 2, 0.8 ** 5)])
def test_layerwise_multipliers_variable_by_variable(model, off_by_one, top, embeddings):
    paths = [v.path for v in model.trainable_variables]
    multipliers = layerwise_lr_multipliers(paths, CONFIG.num_hidden_layers, 0.8, off_by_one)
    assert set(multipliers) == set(paths)
    for path, value in multipliers.items():
        if "embeddings" in path:
            expected = embeddings  # word/position/type tables, their LayerNorm, the projection
        elif "/layer_2/" in path:
            expected = top
        elif "/layer_1/" in path:
            expected = top * 0.8
        elif "/layer_0/" in path:
            expected = top * 0.8 ** 2
        else:
            assert path.split("/")[0] in ("cola", "sts", "squad", "chunk"), path
            expected = 1.0
        assert value == pytest.approx(expected), path


@pytest.mark.slow  # end to end: CI runs it in the slow tier
def test_jit_compiled_fine_tuning_steps_match_the_plain_ones():
    """--jit_compile: XLA-compiled train steps give the weights of the uncompiled ones."""
    import keras

    from convbert_tf.finetuning.trainer import Trainer
    from convbert_tf.training.optimizer import AdamWeightDecay

    arrays = {k: v.numpy() for k, v in batch(np.random.default_rng(0), [0, 1, 2, 3]).items()}
    strategy = tf.distribute.OneDeviceStrategy("/cpu:0")
    initial, trained = {}, {}
    for jit_compile in (False, True):
        keras.utils.set_random_seed(5)
        with strategy.scope():
            tuned = FinetuningModel(ConvBertEncoder(CONFIG), TASKS, beam_size=3)
            tuned({k: tf.constant(v) for k, v in arrays.items()}, training=False)
            # XLA draws other random numbers than TF's kernels: compare without dropout.
            for layer in tuned._flatten_layers():
                if isinstance(layer, keras.layers.Dropout):
                    layer.rate = 0.0
            optimizer = AdamWeightDecay(1e-2)
            optimizer.build(tuned.trainable_variables)
        initial[jit_compile] = [v.numpy() for v in tuned.trainable_variables]
        trainer = Trainer(tuned, optimizer, strategy, global_batch_size=2, jit_compile=jit_compile)
        assert np.isfinite(trainer.train(arrays, num_steps=4, start_step=0, steps_per_loop=2, seed=0, log=False))
        trained[jit_compile] = [v.numpy() for v in tuned.trainable_variables]

    def largest_gap(a, b):
        return max(float(np.abs(x - y).max()) for x, y in zip(a, b))

    assert largest_gap(initial[False], initial[True]) == 0  # the same start
    assert largest_gap(initial[True], trained[True]) > 1e-3  # the steps did train
    assert largest_gap(trained[False], trained[True]) < 1e-4  # Adam moved weights by ~4e-2 in 4 steps


PREDICT_ON_TWO_REPLICAS = """
import json
import numpy as np
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from convbert_tf import ConvBertEncoder
from convbert_tf.finetuning.trainer import Trainer
from convbert_tf.models.finetuning import FinetuningModel
from convbert_tf.training.optimizer import AdamWeightDecay
from tests.models.test_finetuning import CONFIG, TASKS, batch

rng = np.random.default_rng(1)
parts = [{k: v.numpy() for k, v in batch(rng, [0, 1, 2, 3]).items()} for _ in range(3)]
arrays = {k: np.concatenate([p[k] for p in parts])[:11] for k in parts[0]}  # 11 rows: batches pad
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
with strategy.scope():
    model = FinetuningModel(ConvBertEncoder(CONFIG), TASKS, beam_size=3)
    model({k: tf.constant(v[:4]) for k, v in arrays.items()}, training=False)
    optimizer = AdamWeightDecay(1e-3)
    optimizer.build(model.trainable_variables)
got = Trainer(model, optimizer, strategy, global_batch_size=4).predict(arrays, batch_size=4)
want = model({k: tf.constant(v) for k, v in arrays.items()}, training=False)
gaps = {f"{task}/{key}": float(np.abs(np.asarray(value, np.float64)
                                      - want[task][key].numpy().astype(np.float64)).max())
        for task, values in got.items() for key, value in values.items()}
print(json.dumps({"rows": {t: {k: len(v) for k, v in values.items()} for t, values in got.items()}, "gaps": gaps}))
"""


@pytest.mark.slow  # end to end: CI runs it in the slow tier
def test_predict_on_two_replicas_returns_every_row_in_row_order():
    """Trainer.predict under MirroredStrategy (2 logical CPUs): each row's outputs, in order, as
    one direct call of the model gives them (11 rows, so the last batch is padded)."""
    import json
    import os
    import subprocess
    import sys

    from repo_paths import ROOT as root
    result = subprocess.run([sys.executable, "-c", PREDICT_ON_TWO_REPLICAS], cwd=root, capture_output=True,
                            text=True, timeout=300, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert all(n == 11 for values in report["rows"].values() for n in values.values()), report
    assert report["gaps"] and max(report["gaps"].values()) < 1e-4, report
