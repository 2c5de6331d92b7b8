"""Step 1's corpus: Python's own documentation (pydoc_data.topics, shipped with CPython), one text
file per topic, one prose paragraph per line."""

from __future__ import annotations

import os
import re

from convbert_tf import io

_UNDERLINE = re.compile(r"[*=\-~^]{3,}")


def is_prose(paragraph: str) -> bool:
    """Prose, not a grammar rule, an interactive session or a code block."""
    if "::=" in paragraph or ">>>" in paragraph or len(paragraph.split()) < 3:
        return False
    letters = sum(c.isalpha() or c.isspace() for c in paragraph)
    return letters >= 0.8 * len(paragraph)


def topic_paragraphs(text: str) -> list:
    """The prose paragraphs of one pydoc topic, each joined into one line; headings' underlines dropped."""
    paragraphs, lines = [], []
    for line in text.splitlines() + [""]:
        if line.strip():
            lines.append(line.strip())
            continue
        paragraph = " ".join(l for l in lines if not _UNDERLINE.fullmatch(l))
        if paragraph and is_prose(paragraph):
            paragraphs.append(paragraph)
        lines = []
    return paragraphs


def topic_title(text: str) -> str:
    """'The "if" statement' -> 'the if statement'; 'Mapping Types — "dict"' -> 'mapping types'."""
    title = text.strip().splitlines()[0].split(" — ")[0]
    title = re.sub(r"\([^)]*\)", "", title).replace('"', "")
    return " ".join(title.lower().split())


def write_corpus(corpus_dir: str) -> dict:
    """One file per pydoc topic, one prose paragraph per line; returns counts and the topic titles.

    The files are written into a temporary folder beside `corpus_dir`, which then replaces it.
    """
    from pydoc_data.topics import topics

    temporary = io.temporary_name(corpus_dir)
    os.makedirs(temporary)
    paragraphs = words = 0
    for key in sorted(topics):
        lines = topic_paragraphs(topics[key])
        paragraphs += len(lines)
        words += sum(len(line.split()) for line in lines)
        with open(os.path.join(temporary, f"{key}.txt"), "w", encoding="utf-8") as f:
            f.write("".join(line + "\n" for line in lines))
    io.replace_directory(temporary, corpus_dir)
    titles = sorted({topic_title(text) for text in topics.values()})
    return {"dir": corpus_dir, "files": len(topics), "paragraphs": paragraphs, "words": words, "titles": titles}
