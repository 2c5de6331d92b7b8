"""Tiny fine-tuning inputs written by tests: a vocab, a pretrained checkpoint and task files, and
what the reader tests share (a word vocabulary, a task-file writer, hostile text for fuzzing)."""

import json
import os
import random

import keras
from hypothesis import settings
from hypothesis import strategies as st

import convbert_tf
from convbert_tf.data.tokenization import BertTokenizer

POSITIVE = "good great fine nice happy superb".split()
NEGATIVE = "bad awful poor sad ugly terrible".split()
FILLER = "the a movie film was is very really quite who what where answer".split()
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + POSITIVE + NEGATIVE + FILLER + ["?", "."]
MODEL = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 64,
         "max_position_embeddings": 64}
HPARAMS = {"model_size": "small", "vocab_size": len(VOCAB), "embedding_size": 16, "linear_groups": 1,
           "conv_kernel_size": 3, "model_hparam_overrides": MODEL, "max_seq_length": 16, "train_batch_size": 16,
           "eval_batch_size": 16, "learning_rate": 3e-3, "iterations_per_loop": 16}


def write_pretrained(data_dir, model_name="tiny", seed=0):
    """<data_dir>/vocab.txt and a randomly initialized (seeded) 'pretrained' encoder checkpoint."""
    keras.utils.set_random_seed(seed)
    os.makedirs(data_dir, exist_ok=True)
    with open(os.path.join(data_dir, "vocab.txt"), "w") as f:
        f.write("\n".join(VOCAB) + "\n")
    config = convbert_tf.ConvBertConfig(vocab_size=len(VOCAB), embedding_size=16, conv_kernel_size=3, **MODEL)
    convbert_tf.save_encoder(convbert_tf.ConvBertEncoder(config), os.path.join(data_dir, "models", model_name))
    return config


def sentiment_rows(rng, n):
    """A separable task: the label is whether the one sentiment word is positive."""
    rows = []
    for _ in range(n):
        label = rng.randint(0, 1)
        words = [rng.choice(FILLER[:9]) for _ in range(5)]
        words.insert(rng.randint(0, 5), rng.choice(POSITIVE if label else NEGATIVE))
        rows.append((" ".join(words), label))
    return rows


def write_sst(data_dir, n_train=256, n_dev=64, seed=0):
    rng = random.Random(seed)
    path = os.path.join(data_dir, "finetuning_data", "sst")
    os.makedirs(path, exist_ok=True)
    for split, n in (("train", n_train), ("dev", n_dev)):
        with open(os.path.join(path, f"{split}.tsv"), "w") as f:
            f.write("sentence\tlabel\n" + "".join(f"{s}\t{l}\n" for s, l in sentiment_rows(rng, n)))
    with open(os.path.join(path, "test.tsv"), "w") as f:
        f.write("index\tsentence\n" + "".join(f"{i}\t{s}\n" for i, (s, _) in enumerate(sentiment_rows(rng, 8))))
    return path


def write_squad(data_dir, task="squad", n=32, seed=0):
    """SQuAD JSON where the answer is the one sentiment word of the context."""
    rng = random.Random(seed)
    path = os.path.join(data_dir, "finetuning_data", task)
    os.makedirs(path, exist_ok=True)
    for split in ("train", "dev"):
        paragraphs = []
        for i in range(n):
            words = [rng.choice(FILLER[:9]) for _ in range(6)]
            answer = rng.choice(POSITIVE + NEGATIVE)
            position = rng.randint(0, 6)
            words.insert(position, answer)
            context = " ".join(words)
            start = len(" ".join(words[:position])) + (1 if position else 0)
            impossible = task == "squad" and i % 4 == 3
            qa = {"id": f"{split}{i}", "question": "what answer ?",
                  "answers": [] if impossible else [{"text": answer, "answer_start": start}]}
            if task == "squad":
                qa["is_impossible"] = impossible
            paragraphs.append({"context": context, "qas": [qa]})
        with open(os.path.join(path, f"{split}.json"), "w") as f:
            json.dump({"version": "v2.0", "data": [{"title": "t", "paragraphs": paragraphs}]}, f)
    return path


def write_chunk(data_dir, n=64, seed=0):
    """CoNLL-2000 files: sentiment words are chunk B-NP, everything else O."""
    rng = random.Random(seed)
    path = os.path.join(data_dir, "finetuning_data", "chunk")
    os.makedirs(path, exist_ok=True)
    for split in ("train", "dev", "test"):
        lines = []
        for sentence, _ in sentiment_rows(rng, n):
            for word in sentence.split():
                tag = "B-NP" if word in POSITIVE + NEGATIVE else "O"
                lines.append(f"{word} NN {tag}")
            lines.append("")
        with open(os.path.join(path, f"{split}.txt"), "w") as f:
            f.write("\n".join(lines) + "\n")
    return path


# ----------------------------------------------------------------------------------------------
# Shared by the reader and featurization tests.

# Plain words, "##s" and the specials: every sub-token of the reader tests' sentences.
WORD_VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat", "sat", "on", "mat", "a", "dog", "ran",
              ".", "##s", "big", "red", "is", "it"]


def word_tokenizer(directory):
    """A BertTokenizer of WORD_VOCAB (its vocab.txt written into `directory`)."""
    path = os.path.join(os.fspath(directory), "vocab.txt")
    with open(path, "w") as f:
        f.write("\n".join(WORD_VOCAB) + "\n")
    return BertTokenizer.from_vocab_file(path)


def write_task_file(data_dir, task, name, content):
    """Writes `content` (str or bytes) as <data_dir>/finetuning_data/<task>/<name>; returns its path."""
    directory = os.path.join(data_dir, "finetuning_data", task)
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, name)
    with open(path, "w" if isinstance(content, str) else "wb") as f:
        f.write(content)
    return path


# Hostile text for the reader fuzz tests: separators, control and format characters, labels and tags.
_PIECES = list("ab01 \t\t\t\n\n\r.-") + ["entailment", "\x00", "\ufeff", "é", "\u2028", "\x85", "-DOCSTART-",
                                            "B-NP", "I-VP", "O", "E-PP", "5.0", "nan"]
RAW_TEXT = st.lists(st.sampled_from(_PIECES), max_size=80).map("".join)
FUZZ = settings(max_examples=50, deadline=None, derandomize=True, database=None)
