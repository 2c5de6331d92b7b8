"""The MRQA 2019 tasks (newsqa, naturalqs, triviaqa, searchqa): their jsonl files.

Files: `<data_dir>/finetuning_data/<task>/{train,dev}.jsonl` (or `.jsonl.gz`), one context with
its questions per line after a header line. The training answer is a question's first detected
answer span (an inclusive character range); the gold answers are its `answers` (or, without
them, the detected answers' texts).
"""

from __future__ import annotations

import gzip
import os

from convbert_tf.finetuning.examples import DataError, missing_file_error, read_text_file, task_dir
from convbert_tf.finetuning.qa.reading import QuestionReader, is_int, load_json, require
from convbert_tf.finetuning.tasks.qa import QATask


class MrqaTask(QATask):
    """An MRQA 2019 task: no unanswerable questions, no TFDS source."""

    def _read(self, reader: QuestionReader, data_dir, split: str, tfds_data_dir):
        path = os.path.join(task_dir(data_dir, self.name), f"{split}.jsonl")
        if not os.path.isfile(path) and os.path.isfile(path + ".gz"):
            path += ".gz"
        if not os.path.isfile(path):
            raise missing_file_error(path, self.name, f"Put the MRQA 2019 {self.name} {split} file there as "
                                     f"{split}.jsonl (or {split}.jsonl.gz).")
        _read_mrqa_jsonl(reader, path)


def _read_mrqa_jsonl(reader: QuestionReader, path: str):
    """Every question of an MRQA jsonl file (plain or gzip'd), in file order."""
    if path.endswith(".gz"):
        with gzip.open(path, "rb") as f:
            try:
                lines = f.read().decode("utf-8").split("\n")
            except (OSError, EOFError, UnicodeDecodeError) as e:
                raise DataError(f"{path}: cannot read the gzip'd jsonl ({e})") from None
        if lines and lines[-1] == "":
            lines.pop()
    else:
        lines = read_text_file(path)
    reader.stats.lines += len(lines)
    for number, line in enumerate(lines, start=1):
        where_line = f"{path}:{number}"
        if not line.strip():
            reader.stats.blank_lines += 1
            continue
        entry = require(load_json(path, line, number), dict, where_line, "a jsonl line")
        if "header" in entry:
            reader.stats.header_lines += 1
            continue
        context = require(entry.get("context"), str, where_line, "'context'")
        for k, qa in enumerate(require(entry.get("qas"), list, where_line, "'qas'")):
            where = f"{where_line}: qas[{k}]"
            require(qa, dict, where, "a question")
            detected = require(qa.get("detected_answers", []), list, where, "'detected_answers'")
            training_answer = None
            if detected:
                first = require(detected[0], dict, where, "a detected answer")
                spans = require(first.get("char_spans"), list, where, "'char_spans'")
                span = spans[0] if spans else None
                if not (isinstance(span, list) and len(span) == 2 and all(is_int(v) for v in span)):
                    raise DataError(f"{where}: the first char_spans entry {span!r} is not [start, end]")
                start, end = span  # inclusive end
                inside = 0 <= start <= end < len(context)
                training_answer = (context[start : end + 1] if inside else "", start)
            answers = qa.get("answers")
            if answers is None:
                answers = [require(d, dict, where, "a detected answer").get("text") for d in detected]
            answers = require(answers, list, where, "'answers'")
            for answer in answers:
                require(answer, str, where, "an answer")
            reader.add(where, qa.get("qid"), qa.get("question"), context, answers, training_answer, False)

