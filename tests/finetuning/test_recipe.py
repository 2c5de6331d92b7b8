"""The fine-tuning recipe against the original's: loss reduction, step count, padding rows, chunking."""

import io
import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from convbert_tf import ConvBertConfig, ConvBertEncoder
from convbert_tf.config import ConfigError
from convbert_tf.data.tokenization import BertTokenizer
from convbert_tf.finetuning import scorers
from convbert_tf.finetuning.hparams import resolve_finetuning_hparams
from convbert_tf.finetuning.trainer import Trainer, empty_label_arrays, pad_features, train_steps
from convbert_tf.finetuning.run import run_finetuning
from convbert_tf.finetuning.examples import Example, TaggingExample
from convbert_tf.finetuning.tasks.chunk import ChunkTask
from convbert_tf.finetuning.tasks.registry import get_task
from convbert_tf.layers.tagging_head import TaggingHead
from convbert_tf.models.finetuning import FinetuningModel
from convbert_tf.training.optimizer import AdamWeightDecay
from finetuning_data import HPARAMS, VOCAB, write_pretrained, write_sst
from repo_paths import ROOT

# No dropout anywhere, so that two computations of one step see the same numbers.
CONFIG = ConvBertConfig(vocab_size=30, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=32, embedding_size=8, max_position_embeddings=16, conv_kernel_size=3,
                        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
# cola: 2 classes; sts: regression; squad: QA; chunk with one chunk type: 5 tags (O, B/I/E/S-NP).
TASKS = [get_task("cola"), get_task("sts"), get_task("squad"), ChunkTask("chunk", chunk_types=("NP",))]
LENGTH = 8
LEARNING_RATE, WEIGHT_DECAY = 1e-2, 0.01


def real_rows(seed, task_ids):
    """Feature arrays [N, ...] of real examples of the TASKS, one per entry of task_ids."""
    rng = np.random.default_rng(seed)
    n = len(task_ids)
    arrays = empty_label_arrays(n, LENGTH)
    arrays.update(input_ids=rng.integers(1, 30, (n, LENGTH)).astype(np.int32),
                  input_mask=np.ones((n, LENGTH), np.int32),
                  segment_ids=np.array([[0] * 3 + [1] * 5] * n, np.int32),
                  task_id=np.array(task_ids, np.int32),
                  label_ids=rng.integers(0, 2, n).astype(np.int32),
                  label_value=rng.random(n).astype(np.float32),
                  start_positions=rng.integers(3, 6, n).astype(np.int32),
                  end_positions=np.full(n, 6, np.int32),
                  tag_ids=rng.integers(0, 5, (n, LENGTH)).astype(np.int32),
                  tag_weights=(rng.random((n, LENGTH)) < 0.6).astype(np.float32))
    return arrays


def build(strategy, weights=None):
    """A FinetuningModel without dropout (heads included) and its AdamWeightDecay, under strategy."""
    keras.utils.set_random_seed(0)
    with strategy.scope():
        model = FinetuningModel(ConvBertEncoder(CONFIG), TASKS, beam_size=3)
        model({k: tf.constant(v) for k, v in real_rows(0, [0, 1, 2, 3]).items()}, training=False)
        for layer in model._flatten_layers():
            if isinstance(layer, keras.layers.Dropout):
                layer.rate = 0.0
        if weights is not None:
            for variable, value in zip(model.trainable_variables, weights):
                variable.assign(value)
        # Op by op: the fused update compiles a function per variable shape (slow to start) and
        # is tested equal to this one in test_optimization.py.
        optimizer = AdamWeightDecay(LEARNING_RATE, weight_decay_rate=WEIGHT_DECAY, fused_update=False)
        optimizer.build(model.trainable_variables)
    return model, optimizer


def fixed_batches(strategy, arrays):
    """The same global batch (all of `arrays`) at every step, split over the replicas."""
    dataset = tf.data.Dataset.from_tensor_slices(arrays).batch(len(arrays["input_ids"])).repeat()
    return iter(strategy.experimental_distribute_dataset(dataset))


def dense(gradients):
    return [tf.convert_to_tensor(g).numpy().astype(np.float64) for g in gradients]


def run_steps(strategy, reduction, arrays, steps, weights=None):
    """`steps` train steps of one loop each on a fixed batch: (the loops' losses, the weights after)."""
    model, optimizer = build(strategy, weights)
    trainer = Trainer(model, optimizer, strategy, len(arrays["input_ids"]), loss_reduction=reduction)
    train_loop, batches = trainer.make_train_loop(), fixed_batches(strategy, arrays)
    losses = [float(train_loop(batches, tf.constant(1))) for _ in range(steps)]
    return losses, [v.numpy() for v in model.trainable_variables]


# ----------------------------------------------------------------------------------------------
# 1. Loss reduction.


def numpy_adam_step(theta, m, v, gradients, decays):
    """The original's update, by hand: clip the global norm to 1, Adam without bias correction
    (β1 0.9, β2 0.999, ε 1e-6), decoupled weight decay."""
    norm = np.sqrt(sum(float((g ** 2).sum()) for g in gradients))
    scale = 1.0 / max(norm, 1.0)
    out = []
    for t, m_, v_, g, decay in zip(theta, m, v, gradients, decays):
        g = g * scale
        m_ = 0.9 * m_ + 0.1 * g
        v_ = 0.999 * v_ + 0.001 * g ** 2
        update = m_ / (np.sqrt(v_) + 1e-6) + (WEIGHT_DECAY * t if decay else 0.0)
        out.append((t - LEARNING_RATE * update, m_, v_))
    return [list(x) for x in zip(*out)]


@pytest.fixture(scope="module")
def one_device():
    return tf.distribute.OneDeviceStrategy("/cpu:0")


def test_sum_gradients_are_batch_times_mean_gradients(one_device):
    features = {k: tf.constant(v) for k, v in real_rows(1, [0, 1, 2, 3]).items()}
    model, optimizer = build(one_device)
    gradients = {reduction: dense(Trainer(model, optimizer, one_device, 4, loss_reduction=reduction)
                                  .loss_and_gradients(features)[0]) for reduction in ("sum", "mean")}
    paths = [v.path for v in model.trainable_variables]
    for path, total, mean in zip(paths, gradients["sum"], gradients["mean"]):
        np.testing.assert_allclose(total, 4 * mean, rtol=1e-5, atol=1e-9, err_msg=path)
    # Not 0 = 4·0: every variable has a gradient but the QA end logits' bias (a softmax's shift).
    without = [p for p, g in zip(paths, gradients["mean"]) if not np.any(g)]
    assert len(without) <= 1 and all(p.startswith("squad/") and p.endswith("bias") for p in without), without
    with pytest.raises(ValueError, match="loss_reduction 'median'"):
        Trainer(model, optimizer, one_device, 4, loss_reduction="median")


def small_gradient_rows(model, optimizer, strategy, rows=8, mean_norm=0.3):
    """STS rows whose labels sit just below the model's predictions, so that the global norm of the
    "mean" gradient is `mean_norm` (< 1: not clipped) and that of the "sum" rows x as much (> 1:
    clipped). The squared error's gradient is linear in the offset, so one probe sets it."""
    arrays = real_rows(5, [1] * rows)
    features = {k: tf.constant(v) for k, v in arrays.items()}
    predictions = model(features, training=False)["sts"]["logits"].numpy()  # [rows]
    trainer = Trainer(model, optimizer, strategy, rows, loss_reduction="mean")
    probe = dict(features, label_value=tf.constant(predictions - 1.0))
    norm = np.sqrt(sum((g ** 2).sum() for g in dense(trainer.loss_and_gradients(probe)[0])))
    arrays["label_value"] = (predictions - mean_norm / norm).astype(np.float32)
    return arrays


@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_two_clipped_steps_match_a_hand_computation(one_device, reduction):
    """Each step's update is the original's, by hand, from the unclipped gradients of that step's
    weights; on these rows "sum" is clipped (norm 2.4) and "mean" is not (0.3)."""
    model, optimizer = build(one_device)
    arrays = small_gradient_rows(model, optimizer, one_device)
    features = {k: tf.constant(v) for k, v in arrays.items()}
    trainer = Trainer(model, optimizer, one_device, 8, loss_reduction=reduction)
    train_loop, batches = trainer.make_train_loop(), fixed_batches(one_device, arrays)
    decays = [optimizer.uses_weight_decay(v.path) for v in model.trainable_variables]
    assert any(decays) and not all(decays)
    theta = [v.numpy().astype(np.float64) for v in model.trainable_variables]
    m = [np.zeros_like(t) for t in theta]
    v = [np.zeros_like(t) for t in theta]
    for step in range(2):
        gradients = dense(trainer.loss_and_gradients(features)[0])
        if step == 0:
            norm = np.sqrt(sum((g ** 2).sum() for g in gradients))
            assert norm == pytest.approx({"sum": 2.4, "mean": 0.3}[reduction], rel=1e-3)
        theta, m, v = numpy_adam_step(theta, m, v, gradients, decays)
        train_loop(batches, tf.constant(1))
        for variable, expected in zip(model.trainable_variables, theta):
            np.testing.assert_allclose(variable.numpy(), expected, rtol=0, atol=2e-6, err_msg=variable.path)


TWO_REPLICAS = """
import json
import numpy as np
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import sys
sys.path.insert(0, "tests")  # the shared test helpers, as pytest finds them
from convbert_tf.finetuning.trainer import pad_features
from tests.finetuning.test_recipe import build, run_steps, small_gradient_rows

one_device = tf.distribute.OneDeviceStrategy("/cpu:0")
two = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
model, optimizer = build(one_device)
start = [v.numpy() for v in model.trainable_variables]
# 7 real rows (the "mean" gradient not clipped) and a padding row, in the second replica's half.
arrays, _ = pad_features({k: v[:7] for k, v in small_gradient_rows(model, optimizer, one_device).items()}, 8)
report = {}
for reduction in ("sum", "mean"):
    losses_one, weights_one = run_steps(one_device, reduction, arrays, 2, start)
    losses_two, weights_two = run_steps(two, reduction, arrays, 2, start)
    report[reduction] = {"losses": [losses_one, losses_two],
                         "gap": max(float(np.abs(a - b).max()) for a, b in zip(weights_one, weights_two)),
                         "moved": max(float(np.abs(a - b).max()) for a, b in zip(weights_one, start))}
print(json.dumps(report))
"""


@pytest.mark.slow
def test_two_replicas_take_the_step_of_one_device():
    """MirroredStrategy on 2 logical CPUs (a fresh process: the devices must be set before TensorFlow
    starts): the same two steps and losses as one device, with either reduction ("mean" unclipped),
    a padding row in the second replica's half of the batch."""
    result = subprocess.run([sys.executable, "-c", TWO_REPLICAS], cwd=ROOT, capture_output=True, text=True,
                            timeout=600, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    for reduction, values in report.items():
        assert values["moved"] > 1e-2, (reduction, values)
        assert values["gap"] < 1e-5, (reduction, values)
        np.testing.assert_allclose(values["losses"][0], values["losses"][1], rtol=1e-5)


# ----------------------------------------------------------------------------------------------
# 3. Step count and padding rows.


def test_train_steps_are_the_originals():
    for n in (1, 31, 32, 33, 100, 1000):
        for batch in (8, 32):
            for epochs in (0.3, 1.0, 2.5, 3.0, 10.0):
                padded = n + (-n) % batch  # the original appends padding examples up to whole batches
                assert train_steps(n, batch, epochs) == int(padded // batch * epochs), (n, batch, epochs)
    assert (train_steps(100, 32, 3.0), train_steps(96, 32, 3.0), train_steps(100, 32, 2.5)) == (12, 9, 10)
    assert train_steps(2000, 32, 3.0) == 189  # floor(n / batch) would give 186


def test_padding_rows_have_zero_loss_and_zero_gradient(one_device):
    arrays, count = pad_features(real_rows(4, [0, 1, 2, 3, 3]), 8)
    assert count == 5 and list(arrays["task_id"][count:]) == [-1, -1, -1]
    features = {k: tf.constant(v) for k, v in arrays.items()}
    model, optimizer = build(one_device)
    with tf.GradientTape() as tape:
        losses = model.per_example_losses(features, model(features, training=True))  # [8]
        padding_loss = tf.reduce_sum(losses[count:])
    assert np.all(losses.numpy()[count:] == 0.0) and np.all(losses.numpy()[:count] > 0.0)
    for variable, gradient in zip(model.trainable_variables, tape.gradient(padding_loss, model.trainable_variables)):
        assert gradient is None or not np.any(tf.convert_to_tensor(gradient).numpy()), variable.path
    # The same rows claimed by a task would have a loss: the zero comes from task_id -1.
    claimed = dict(features, task_id=tf.zeros_like(features["task_id"]))
    assert np.all(model.per_example_losses(claimed, model(claimed, training=True)).numpy()[count:] > 0.0)
    # A step's gradients and loss are those of its real rows alone.
    trainer = Trainer(model, optimizer, one_device, 8)
    padded_gradients, padded_sum, rows = trainer.loss_and_gradients(features)
    real_gradients, real_sum, _ = trainer.loss_and_gradients({k: v[:count] for k, v in features.items()})
    assert float(rows) == count
    np.testing.assert_allclose(float(padded_sum), float(real_sum), rtol=1e-5)
    for padded, real in zip(dense(padded_gradients), dense(real_gradients)):
        np.testing.assert_allclose(padded, real, rtol=1e-4, atol=1e-7)


def test_a_run_trains_the_last_partial_batch(tmp_path):
    """40 examples in batches of 16 for one epoch: 3 steps, the third with 8 padding rows."""
    data_dir = str(tmp_path)
    write_pretrained(data_dir)
    write_sst(data_dir, n_train=40, n_dev=16)
    hp = resolve_finetuning_hparams(dict(HPARAMS, task_names=["sst"], num_train_epochs=1.0, do_eval=False,
                                         write_test_outputs=False, export=False),
                                    data_dir=data_dir, model_name="tiny")
    assert hp.loss_reduction == "sum"
    out = io.StringIO()
    run_finetuning(hp, tf.distribute.OneDeviceStrategy("/cpu:0"), out=out)
    log = out.getvalue()
    assert "fine-tuning sst for 3 steps" in log and "step 3/3 | loss " in log and " per example | " in log, log
    trial_dir = tmp_path / "models" / "tiny" / "finetuning_models" / "sst_model_1"
    assert tf.train.latest_checkpoint(str(trial_dir)).endswith("ckpt-3")


# ----------------------------------------------------------------------------------------------
# 2. Chunking.


def test_tagging_head_is_one_dense_layer_without_dropout():
    head = TaggingHead(5)
    head.build((None, None, 16))
    x = np.random.default_rng(5).normal(size=(2, 7, 16)).astype(np.float32)
    kernel, bias = head.dense.kernel.numpy(), head.dense.bias.numpy()
    for training in (True, False):
        np.testing.assert_allclose(head(x, training=training).numpy(), x @ kernel + bias, rtol=1e-5, atol=1e-6)
    assert [w.path for w in head.weights] == ["tagging_head/dense/kernel", "tagging_head/dense/bias"]
    assert not any(isinstance(layer, keras.layers.Dropout) for layer in head._flatten_layers())


def test_chunk_segment_ids_are_one_on_every_real_token(tmp_path):
    path = tmp_path / "vocab.txt"
    path.write_text("\n".join(VOCAB) + "\n")
    tokenizer = BertTokenizer.from_vocab_file(str(path))
    example = TaggingExample("chunk", "dev", 0, "dev-1", ("the", "movie", "was", "good"),
                             ("B-NP", "E-NP", "S-VP", "S-ADJP"))
    (feature,) = get_task("chunk").featurize([example], tokenizer, 9, is_training=True)
    assert list(feature.input_mask) == [1] * 6 + [0] * 3  # [CLS] 4 words [SEP]
    assert list(feature.segment_ids) == [1] * 6 + [0] * 3


# Hand-computed chunks of ill-formed predicted sequences. "original": a chunk closes only at B,
# S or O and takes the type of its last tag; "conlleval": also at E and at a change of type.
PREDICTED = [["B-NP", "I-VP"], ["E-NP", "E-NP"], ["S-NP", "I-NP", "O", "I-PP"]]
GOLD = [["B-VP", "E-VP"], ["B-NP", "E-NP"], ["S-NP", "S-NP", "O", "S-PP"]]
CHUNKS = {
    "original": [[(0, 1, "VP")], [(0, 1, "NP")], [(0, 1, "NP"), (3, 3, "PP")]],
    "conlleval": [[(0, 0, "NP"), (1, 1, "VP")], [(0, 0, "NP"), (1, 1, "NP")],
                  [(0, 0, "NP"), (1, 1, "NP"), (3, 3, "PP")]],
}


@pytest.mark.parametrize("rule", ["original", "conlleval"])
def test_chunks_of_ill_formed_sequences_by_hand(rule):
    assert [scorers.tag_spans(tags, rule) for tags in PREDICTED] == CHUNKS[rule]
    assert scorers.tag_spans(["B-NP", "E-NP", "I-NP"], rule) == \
        {"original": [(0, 2, "NP")], "conlleval": [(0, 1, "NP"), (2, 2, "NP")]}[rule]


def test_chunk_f1_reads_predictions_as_the_original_by_default():
    # original: predicted 4 chunks, gold 5 (well-formed, read alike), correct 3: the VP of
    # sentence 1, the NP of sentence 2, the PP of sentence 3. P 75, R 60, F1 2·.75·.6/1.35.
    assert scorers.chunk_f1(PREDICTED, GOLD) == pytest.approx({"precision": 75.0, "recall": 60.0, "f1": 200 / 3})
    # conlleval: predicted 7, gold 5, correct 3 (all of sentence 3): P 3/7, R 3/5, F1 1/2.
    assert scorers.chunk_f1(PREDICTED, GOLD, "conlleval") == pytest.approx(
        {"precision": 300 / 7, "recall": 60.0, "f1": 50.0})


def test_chunk_f1_reads_gold_by_the_same_rule():
    gold, predicted = [["B-NP", "I-VP"]], [["B-VP", "E-VP"]]
    assert scorers.chunk_f1(predicted, gold)["f1"] == pytest.approx(100.0)  # both (0, 1, VP)
    assert scorers.chunk_f1(predicted, gold, "conlleval")["f1"] == 0.0  # gold (0, 0, NP) (1, 1, VP)


def test_chunk_task_reads_and_scores_by_its_span_rule(tmp_path):
    """Gold IOB tags `B-NP I-VP` become one VP chunk when read by the original's rule, two
    chunks by conlleval's; each task scores by its own rule."""
    path = tmp_path / "finetuning_data" / "chunk"
    path.mkdir(parents=True)
    (path / "dev.txt").write_text("a DT B-NP\nb NN I-VP\nc NN I-VP\n\n")
    original, conlleval = get_task("chunk"), get_task("chunk", "conlleval")
    assert original is get_task("chunk") and original.span_rule == "original"
    (example,) = original.read_examples(str(tmp_path), "dev")
    assert example.tags == ("B-VP", "I-VP", "E-VP")
    (example_conlleval,) = conlleval.read_examples(str(tmp_path), "dev")
    assert example_conlleval.tags == ("S-NP", "B-VP", "E-VP")
    predicted = [["B-VP", "I-VP", "E-VP"]]
    assert original.score([example], predicted)["f1"] == pytest.approx(100.0)
    assert conlleval.score([example_conlleval], predicted)["f1"] == 0.0
    with pytest.raises(ValueError, match="chunk_span_rule 'strict'"):
        get_task("chunk", "strict")


def test_recipe_hparams_default_to_the_original_and_check_their_values():
    hp = resolve_finetuning_hparams({})
    assert (hp.loss_reduction, hp.chunk_span_rule) == ("sum", "original")
    assert resolve_finetuning_hparams({"loss_reduction": "mean"}).loss_reduction == "mean"
    with pytest.raises(ConfigError, match="loss_reduction must be one of 'sum', 'mean', got 'avg'"):
        resolve_finetuning_hparams({"loss_reduction": "avg"})
    with pytest.raises(ConfigError, match="chunk_span_rule must be one of 'original', 'conlleval'"):
        resolve_finetuning_hparams({"chunk_span_rule": "strict"})


def test_a_pair_whose_second_text_has_no_tokens_takes_the_single_layout(tmp_path):
    """As the original (`if tokens_b:`): "" or a text of no tokens gives [CLS] a [SEP] with the
    T - 2 budget, the same inputs the exported model's in-graph packing makes."""
    from convbert_tf.text_inputs import pack_token_ids

    path = tmp_path / "vocab.txt"
    path.write_text("\n".join(VOCAB) + "\n")
    tokenizer = BertTokenizer.from_vocab_file(str(path))
    specials = tokenizer.special_token_ids
    texts = [("the movie was good", ""), ("the movie was good", "  "), ("the movie", "was good")]
    examples = [Example("mrpc", "dev", i, f"dev-{i}", a, b, "1") for i, (a, b) in enumerate(texts)]
    features = get_task("mrpc").featurize(examples, tokenizer, 6, is_training=False)
    movie = list(tokenizer.tokenize(["the movie was good"])[0])
    assert len(movie) == 4  # exactly the single budget T - 2: nothing is cut
    for feature in features[:2]:
        assert list(feature.input_ids) == [specials.cls] + movie + [specials.sep]
        assert list(feature.segment_ids) == [0] * 6 and list(feature.input_mask) == [1] * 6
    # A real pair keeps the pair layout: [CLS] a [SEP] b [SEP], b's segment 1, cut to T - 3.
    assert list(features[2].segment_ids)[-2:] == [1, 1] and features[2].input_ids[3] == specials.sep

    ids_a = tf.ragged.constant([movie] * 3, tf.int32)
    ids_b = tf.ragged.constant([[], [], list(tokenizer.tokenize(["was good"])[0])], tf.int32)
    ids_a = tf.concat([ids_a[:2], tf.ragged.constant([list(tokenizer.tokenize(["the movie"])[0])], tf.int32)], 0)
    packed, _ = pack_token_ids(ids_a, ids_b, 6, specials.cls, specials.sep, specials.pad)
    for key in ("input_ids", "input_mask", "segment_ids"):
        np.testing.assert_array_equal(packed[key].numpy(), [getattr(f, key) for f in features], err_msg=key)


def test_finetuning_hparams_resolve_per_size_then_per_task_values_as_the_original():
    """configure_finetuning.py: per-size values, then per-task ones only for a single task, then the user's."""
    base_rte = resolve_finetuning_hparams({"model_size": "base", "task_names": ["rte"]})
    assert (base_rte.learning_rate, base_rte.num_train_epochs, base_rte.max_seq_length) == (1e-4, 10.0, 128)
    squad = resolve_finetuning_hparams({"model_size": "small", "task_names": ["squad"]})
    assert (squad.learning_rate, squad.max_seq_length, squad.num_train_epochs, squad.write_test_outputs) == (
        3e-4, 512, 2.0, False)
    chunk = resolve_finetuning_hparams({"task_names": ["chunk"]})
    assert (chunk.model_size, chunk.learning_rate, chunk.max_seq_length, chunk.linear_groups) == (
        "medium-small", 3e-4, 256, 2)
    several = resolve_finetuning_hparams({"task_names": ["rte", "sts"]})
    assert (several.num_train_epochs, several.max_seq_length) == (3.0, 128)  # per-task values need one task
    mine = resolve_finetuning_hparams({"task_names": ["rte"], "num_train_epochs": 2.0})
    assert mine.num_train_epochs == 2.0
    assert (mine.layerwise_lr_decay, mine.warmup_proportion, mine.weight_decay_rate, mine.train_batch_size) == (
        0.8, 0.1, 0.01, 32)
