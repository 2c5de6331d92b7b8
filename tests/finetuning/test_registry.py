"""Every task of the registry builds its head, runs its loss and traces its serving signatures on a tiny model."""
import numpy as np
import pytest
import tensorflow as tf

from convbert_tf import ConvBertConfig, ConvBertEncoder
from convbert_tf.data.tokenization import WordPieceTokenizerModule
from convbert_tf.finetuning.trainer import empty_label_arrays
from convbert_tf.finetuning.serving import ServingContext, ServingOptions
from convbert_tf.finetuning.tasks.registry import TASKS
from convbert_tf.models.finetuning import FinetuningModel
from finetuning_data import WORD_VOCAB

CONFIG = ConvBertConfig(vocab_size=len(WORD_VOCAB), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=32, embedding_size=8, max_position_embeddings=16, conv_kernel_size=3)
LENGTH = 8
# The text inputs of each kind of serving_default signature.
TEXT_INPUTS = {("sentence",), ("sentence1", "sentence2"), ("question", "context")}


@pytest.fixture(scope="module")
def model():
    return FinetuningModel(ConvBertEncoder(CONFIG), list(TASKS.values()), beam_size=2)


def test_every_task_has_a_head_named_after_it(model):
    for task_id, task in enumerate(TASKS.values()):
        head = model.head(task.name)
        assert head.name == task.name and head.built, task
        assert model.tasks[task_id] is task


def test_every_task_computes_its_loss_on_a_mixed_batch(model):
    n = len(TASKS)
    arrays = empty_label_arrays(n, LENGTH)
    rng = np.random.default_rng(0)
    arrays.update(input_ids=rng.integers(5, len(WORD_VOCAB), (n, LENGTH)).astype(np.int32),
                  input_mask=np.ones((n, LENGTH), np.int32), segment_ids=np.zeros((n, LENGTH), np.int32),
                  task_id=np.arange(n, dtype=np.int32))
    features = {k: tf.constant(v) for k, v in arrays.items()}
    outputs = model(features, training=True)
    assert set(outputs) == set(TASKS)
    losses = model.per_example_losses(features, outputs).numpy()
    assert losses.shape == (n,) and np.all(np.isfinite(losses))


def _serving_kinds():
    """One task per distinct serving behaviour: kind, single text or pair, SQuAD version."""
    seen = {}
    for task in TASKS.values():
        key = (task.kind, getattr(task, "is_pair", None), getattr(task, "version_2", None))
        seen.setdefault(key, task)
    return sorted(seen.values(), key=lambda task: task.name)


@pytest.mark.parametrize("task", _serving_kinds(), ids=lambda task: task.name)
def test_serving_signatures_trace(model, task):
    tokenizer = WordPieceTokenizerModule(WORD_VOCAB, True, True)
    labels = tf.constant([str(label) for label in (task.label_list or [])] or [""])
    context = ServingContext(encoder=model.encoder, head=model.head(task.name), tokenizer=tokenizer,
                             vocab=tf.constant(WORD_VOCAB), labels=labels,
                             options=ServingOptions(max_seq_length=LENGTH, max_query_length=3, doc_stride=2,
                                                    n_best_size=2, max_answer_length=3, window_batch_size=2))
    serve_ids, serve_text = task.serving_functions(context)
    ids = serve_ids.get_concrete_function()
    assert tuple(spec.name for spec in ids.structured_input_signature[0]) == ("input_ids", "input_mask",
                                                                               "segment_ids")
    text = serve_text.get_concrete_function()
    names = tuple(spec.name for spec in text.structured_input_signature[0])
    assert names in TEXT_INPUTS, names
    assert ids.structured_outputs and text.structured_outputs
