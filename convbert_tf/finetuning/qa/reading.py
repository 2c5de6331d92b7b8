"""Reading extractive QA questions: the checks and counts every QA reader shares.

`QuestionReader.add` takes one question in any source format (SQuAD JSON, MRQA jsonl, TFDS) and
turns it into a `QAExample`, or a `DataError` naming where it is and what is wrong, or a counted
skip. The format readers themselves are the task classes' (`tasks.squad`, `tasks.mrqa`).

A training question whose answer text does not occur at its answer_start is an error naming the
question id (the original logged and skipped it); `skip_bad_answers` skips and counts.
"""

from __future__ import annotations

import json
from typing import Sequence

from convbert_tf.finetuning.examples import DataError, DataStats, QAExample


def split_context(context: str) -> tuple[tuple, tuple]:
    """The context's whitespace-separated words and each word's first character offset."""
    words, starts = [], []
    previous_is_space = True
    for offset, char in enumerate(context):
        if char.isspace():
            previous_is_space = True
            continue
        if previous_is_space:
            words.append(char)
            starts.append(offset)
        else:
            words[-1] += char
        previous_is_space = False
    return tuple(words), tuple(starts)


def is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _check_answer(context: str, text, start) -> str | None:
    """Why (text, start) is not a usable answer of `context`, or None when it is."""
    if not isinstance(text, str) or not text.strip():
        return f"answer text {text!r} is empty or not a string"
    if not is_int(start) or start < 0:
        return f"answer_start {start!r} is not a non-negative integer"
    found = context[start : start + len(text)]
    if found != text:
        return f"answer {text!r} does not occur at answer_start {start} (the context has {found!r} there)"
    return None


class QuestionReader:
    """Turns raw questions into QAExamples for one task and split, counting everything."""

    def __init__(self, task, split: str, skip_bad_answers: bool, stats: DataStats):
        self.task, self.split, self.skip_bad_answers, self.stats = task, split, skip_bad_answers, stats
        self.examples: list[QAExample] = []
        self.seen_ids: dict[str, str] = {}
        self._contexts: dict[str, tuple] = {}

    def add(self, where: str, qid, question, context: str, answers: Sequence[str],
            training_answer: tuple | None, is_impossible: bool):
        """One question. `training_answer` is (text, start) or None; `where` locates it for errors."""
        self.stats.questions += 1
        if not (isinstance(qid, str) or is_int(qid)):
            raise DataError(f"{where}: question id {qid!r} is not a string")
        qid = str(qid)
        if qid in self.seen_ids:
            raise DataError(f"{where}: question id {qid!r} repeats (first at {self.seen_ids[qid]}); prediction "
                            "files are keyed by id")
        self.seen_ids[qid] = where
        if not isinstance(question, str):
            raise DataError(f"{where}: question {qid}: 'question' is not a string")
        for text in [question, *answers] + ([context] if context not in self._contexts else []):
            if not _is_utf8(text):
                raise DataError(f"{where}: question {qid}: text with an unpaired surrogate escape (\\ud800-"
                                "\\udfff), which is not Unicode")
        answer_text, answer_start = "", -1
        problem = None
        if not is_impossible:
            problem = ("an answerable question without any answer" if training_answer is None
                       else _check_answer(context, *training_answer))
        if problem is not None:
            if self.split == "train" or not answers:
                if not self.skip_bad_answers:
                    raise DataError(f"{where}: question {qid}: {problem} (the hparam \"skip_bad_answers\": true "
                                    "skips such questions)")
                self.stats.skip(f"{where}: question {qid}", problem)
                return
            self.stats.unchecked_answers += 1  # not training: scored on the answer texts, positions unused
        elif not is_impossible:
            answer_text, answer_start = training_answer
        if context not in self._contexts:
            self._contexts[context] = split_context(context)
        words, starts = self._contexts[context]
        self.examples.append(QAExample(
            task=self.task.name, split=self.split, example_index=len(self.examples), qid=qid, question=question,
            context=context, doc_words=words, word_starts=starts, answers=tuple(answers), answer_text=answer_text,
            answer_start=answer_start, is_impossible=bool(is_impossible)))
        self.stats.examples += 1


def require(value, kind, where: str, what: str):
    if not isinstance(value, kind) or isinstance(value, bool):
        names = {dict: "an object", list: "a list", str: "a string"}
        raise DataError(f"{where}: {what} must be {names.get(kind, kind.__name__)}, got {type(value).__name__}")
    return value


def load_json(path: str, text: str, line: int | None = None):
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise DataError(f"{path}:{line or e.lineno}: not valid JSON ({e.msg})") from None
    except RecursionError:
        raise DataError(f"{path}:{line or 1}: JSON nested too deeply") from None
    except ValueError as e:  # e.g. an integer literal over Python's digit limit
        raise DataError(f"{path}:{line or 1}: not usable JSON ({e})") from None
