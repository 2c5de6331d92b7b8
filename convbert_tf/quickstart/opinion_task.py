"""Step 4's built-in task: is the opinion about a Python topic positive? In GLUE's SST-2 layout."""

from __future__ import annotations

import os
import random

from convbert_tf import io

POSITIVE = ("elegant", "readable", "clear", "simple", "useful", "powerful", "consistent", "reliable",
            "convenient", "intuitive", "fast", "helpful")
NEGATIVE = ("confusing", "awkward", "fragile", "verbose", "obscure", "tedious", "clumsy", "cryptic", "slow",
            "painful", "inconsistent", "frustrating")
ADVERBS = ("really", "quite", "rather", "surprisingly", "always", "often", "very", "truly", "honestly",
           "somewhat")
OPENINGS = ("working with {subject} is", "the documentation of {subject} is", "in large programs {subject} can be",
            "for beginners {subject} seems", "learning {subject} was", "honestly , {subject} feels")
ENDINGS = ("", " for beginners", " in practice", " compared to other languages", " when reading old code")

# Served in step 5; the rule gives the expected labels. Subjects are topic titles of the corpus.
PROBE_SENTENCES = (
    ("working with the with statement is surprisingly elegant", 1),
    ("the documentation of coroutines is rather confusing", 0),
    ("learning the import statement was truly intuitive in practice", 1),
    ("for beginners lambdas seems quite cryptic", 0),
    ("in large programs the global statement can be very fragile", 0),
)


def opinion_label(opinion: str) -> int:
    """The task's rule: 1 (positive) when the sentence's opinion word is one of POSITIVE, 0 for NEGATIVE.

    Everything else in a sentence (topic, opening, adverb, ending) is drawn independently of the
    label, so the model must find that one word (often several word pieces) among ten to twenty.
    """
    return int(opinion in POSITIVE)


def opinion_sentence(rng: random.Random, subjects) -> tuple:
    """'<opening with a topic title> <adverb> <opinion><ending>' and its label by `opinion_label`."""
    opinion = rng.choice(POSITIVE + NEGATIVE)
    opening = rng.choice(OPENINGS).format(subject=rng.choice(subjects))
    return f"{opening} {rng.choice(ADVERBS)} {opinion}{rng.choice(ENDINGS)}", opinion_label(opinion)


def write_opinion_task(task_dir: str, subjects, sizes, seed: int) -> dict:
    """train.tsv and dev.tsv (sentence, label) and test.tsv (index, sentence): GLUE's SST-2 layout."""
    rng = random.Random(f"quickstart-task:{seed}")
    counts = {}
    for split, size in zip(("train", "dev", "test"), sizes):
        rows = [opinion_sentence(rng, subjects) for _ in range(size)]
        if split == "test":
            text = "index\tsentence\n" + "".join(f"{i}\t{s}\n" for i, (s, _) in enumerate(rows))
        else:
            text = "sentence\tlabel\n" + "".join(f"{s}\t{label}\n" for s, label in rows)
        io.atomic_write_text(os.path.join(task_dir, f"{split}.tsv"), text)
        counts[split] = {"examples": size, "positive": sum(label for _, label in rows)}
    return counts
