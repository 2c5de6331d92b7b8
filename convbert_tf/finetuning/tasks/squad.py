"""SQuAD 1.1 (`squadv1`) and 2.0 (`squad`): the JSON files (or TFDS squad/v1.1, squad/v2.0).

Files: `<data_dir>/finetuning_data/<task>/{train,dev}.json`, SQuAD's own JSON. The training
answer is a question's first answer; SQuAD 2.0 questions may be unanswerable (`is_impossible`).
"""

from __future__ import annotations

import os

from convbert_tf.finetuning.examples import (DataError, as_text, missing_file_error, read_text_file, task_dir,
                                             tfds_builder_if_prepared, tfds_records)
from convbert_tf.finetuning.qa.reading import QuestionReader, load_json, require
from convbert_tf.finetuning.tasks.qa import QATask

_TFDS_SPLITS = {"train": "train", "dev": "validation"}


class SquadTask(QATask):
    """SQuAD 1.1 or 2.0 (`version_2`), read from JSON or, when prepared there, from TFDS."""

    def _read(self, reader: QuestionReader, data_dir, split: str, tfds_data_dir):
        if tfds_data_dir is not None and self.tfds_name is not None:
            builder = tfds_builder_if_prepared(self.tfds_name, tfds_data_dir, _TFDS_SPLITS[split])
            if builder is not None:
                _read_squad_tfds(reader, builder, _TFDS_SPLITS[split])
                return
        path = os.path.join(task_dir(data_dir, self.name), f"{split}.json")
        if not os.path.isfile(path):
            version = "2.0" if self.version_2 else "1.1"
            raise missing_file_error(path, self.name, f"Put SQuAD {version}'s {split}-v{version}.json there as "
                                     f"{split}.json, or pass tfds_data_dir where TFDS {self.tfds_name} is prepared.")
        _read_squad_json(reader, path)


def _read_squad_json(reader: QuestionReader, path: str):
    """Every question of a SQuAD JSON file, in file order."""
    text = "\n".join(read_text_file(path))
    data = load_json(path, text)
    require(data, dict, path, "the top level")
    articles = require(data.get("data"), list, path, "'data'")
    version_2 = reader.task.version_2
    for i, article in enumerate(articles):
        where_article = f"{path}: data[{i}]"
        require(article, dict, where_article, "an article")
        for j, paragraph in enumerate(require(article.get("paragraphs"), list, where_article, "'paragraphs'")):
            where_paragraph = f"{where_article}.paragraphs[{j}]"
            require(paragraph, dict, where_paragraph, "a paragraph")
            context = require(paragraph.get("context"), str, where_paragraph, "'context'")
            for k, qa in enumerate(require(paragraph.get("qas"), list, where_paragraph, "'qas'")):
                where = f"{where_paragraph}.qas[{k}]"
                require(qa, dict, where, "a question")
                answers = require(qa.get("answers", []), list, where, "'answers'")
                texts = []
                for answer in answers:
                    require(answer, dict, where, "an answer")
                    texts.append(require(answer.get("text"), str, where, "an answer's 'text'"))
                is_impossible = qa.get("is_impossible", False) if version_2 else False
                if not isinstance(is_impossible, bool):
                    raise DataError(f"{where}: 'is_impossible' must be true or false, got {is_impossible!r}")
                first = (answers[0]["text"], answers[0].get("answer_start")) if answers else None
                reader.add(where, qa.get("id"), qa.get("question"), context, texts, first, is_impossible)



def _read_squad_tfds(reader: QuestionReader, builder, split: str):
    """Every question of a prepared TFDS squad split, in its order."""
    where_split = f"TFDS {reader.task.tfds_name} {split}"
    for record in tfds_records(builder, split):
        qid = as_text(record["id"])
        texts = [as_text(t) for t in record["answers"]["text"]]
        starts = [int(s) for s in record["answers"]["answer_start"]]
        is_impossible = bool(record.get("is_impossible", False)) if reader.task.version_2 else False
        first = (texts[0], starts[0]) if texts else None
        reader.add(f"{where_split} id {qid}", qid, as_text(record["question"]), as_text(record["context"]), texts,
                   first, is_impossible)

