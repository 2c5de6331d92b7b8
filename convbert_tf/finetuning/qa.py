"""Extractive QA data: SQuAD / MRQA reading, doc-span featurization, and beam-search post-processing.

Legend: N features, K beam size (start candidates, and end candidates per start).

Featurization follows the original (BERT's SQuAD recipe, reference §5.2): the context is split
into words at whitespace, each word into WordPiece sub-tokens; the question is cut to
max_query_length sub-tokens; the document is cut into overlapping spans of at most
max_seq_length − len(question) − 3 sub-tokens, each starting doc_stride after the previous, and
each span becomes one feature `[CLS] question [SEP] span [SEP]` (segments 0 … 0 1 … 1) with id
1000·example_index + span_index. A sub-token belongs to the "max context" span that gives it the
largest min(left, right) context (+0.01·span length; the earliest span wins a tie). Training
positions are the answer's first and last sub-tokens, or 0 ([CLS]) when the question is
unanswerable or the answer is not wholly inside the span.

Differences from the original, both about where an answer begins and ends inside a word:

* Every sub-token keeps the character offsets of its text in the context, so the training
  answer is the sub-tokens its characters overlap, and a predicted span's text is the context
  from the first character of its start sub-token to the last of its end sub-token. The original
  reached the same spans indirectly (`_improve_answer_span` searched for the answer's sub-tokens
  inside its words; `get_final_text` re-aligned a de-tokenized prediction to the original word
  characters and fell back to whole words). When a sub-token cannot be aligned (normalization
  that changes a word's length in ways that cannot be traced per character), its whole word's
  offsets are used, which is the original's fallback too.
* A training question whose answer text does not occur at its answer_start is an error naming
  the question id (the original logged and skipped it); `skip_bad_answers` skips and counts.

Post-processing, as the original's two head modes:

* joint_prediction (the default): per feature, the head's K start candidates and K end
  candidates per start (beam search); a candidate scores start_log_prob + end_log_prob.
* independent start and end: per feature, the n_best_size largest start logits and the
  n_best_size largest end logits, every pair of them; a pair scores start_logit + end_logit.

A (start, end) pair is kept when both are document tokens of that feature, the start has its
max context there, end ≥ start and the span has at most max_answer_length sub-tokens. Pairs
from all of a question's features are ranked by their score (ties keep feature, start, end
order), duplicates of the same text dropped, the first n_best_size kept, and their
probabilities are a softmax over the score. The n-best entries keep the original's field names
`start_logit` and `end_logit`, which hold the beam's log-probabilities in joint mode.

SQuAD 2.0 null odds (higher = more likely unanswerable), minimum over the question's features:
* answerable_classifier (the default): the head's logit of "unanswerable" (the target of its
  sigmoid loss is is_impossible), min over features.
* without it: score_null − start_logit − end_logit of the best span, where score_null is the
  minimum over features of start_logits[0] + end_logits[0], the [CLS] logits. In joint mode
  the original's end logits are zeros at inference, so there score_null is the minimum
  start_logits[0]. With no valid span the best span's score counts as 0 (the original's
  placeholder answer).

A question's final prediction is "" when null_odds > na_threshold (the original's
qa_na_threshold, −2.75), else its best span.
"""

from __future__ import annotations

import collections
import dataclasses
import gzip
import json
import math
import os
from typing import Any, Mapping, Sequence

import numpy as np

from convbert_tf.finetuning.outputs import write_json
from convbert_tf.finetuning.tasks import (DataError, DataStats, QAExample, QAFeature, as_text, missing_file_error,
                                          pad_to, read_text_file, task_dir, tfds_builder_if_prepared, tfds_records)

MAX_SPANS_PER_EXAMPLE = 1000  # feature ids are 1000·example_index + span_index

_TFDS_SPLITS = {"train": "train", "dev": "validation"}


class _BadQuestion(Exception):
    """What is wrong with one question; the reader raises a DataError or counts a skip."""


# ----------------------------------------------------------------------------------------------
# Reading.


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


def _is_int(value) -> bool:
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
    if not _is_int(start) or start < 0:
        return f"answer_start {start!r} is not a non-negative integer"
    found = context[start : start + len(text)]
    if found != text:
        return f"answer {text!r} does not occur at answer_start {start} (the context has {found!r} there)"
    return None


class _Reader:
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
        if not (isinstance(qid, str) or _is_int(qid)):
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
                    raise DataError(f"{where}: question {qid}: {problem} (the hparam \"skip_bad_answers\": true skips such "
                                    "questions)")
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


def _require(value, kind, where: str, what: str):
    if not isinstance(value, kind) or isinstance(value, bool):
        names = {dict: "an object", list: "a list", str: "a string"}
        raise DataError(f"{where}: {what} must be {names.get(kind, kind.__name__)}, got {type(value).__name__}")
    return value


def _load_json(path: str, text: str, line: int | None = None):
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise DataError(f"{path}:{line or e.lineno}: not valid JSON ({e.msg})") from None
    except RecursionError:
        raise DataError(f"{path}:{line or 1}: JSON nested too deeply") from None
    except ValueError as e:  # e.g. an integer literal over Python's digit limit
        raise DataError(f"{path}:{line or 1}: not usable JSON ({e})") from None


def _read_squad_json(reader: _Reader, path: str):
    text = "\n".join(read_text_file(path))
    data = _load_json(path, text)
    _require(data, dict, path, "the top level")
    articles = _require(data.get("data"), list, path, "'data'")
    version_2 = reader.task.version_2
    for i, article in enumerate(articles):
        where_article = f"{path}: data[{i}]"
        _require(article, dict, where_article, "an article")
        for j, paragraph in enumerate(_require(article.get("paragraphs"), list, where_article, "'paragraphs'")):
            where_paragraph = f"{where_article}.paragraphs[{j}]"
            _require(paragraph, dict, where_paragraph, "a paragraph")
            context = _require(paragraph.get("context"), str, where_paragraph, "'context'")
            for k, qa in enumerate(_require(paragraph.get("qas"), list, where_paragraph, "'qas'")):
                where = f"{where_paragraph}.qas[{k}]"
                _require(qa, dict, where, "a question")
                answers = _require(qa.get("answers", []), list, where, "'answers'")
                texts = []
                for answer in answers:
                    _require(answer, dict, where, "an answer")
                    texts.append(_require(answer.get("text"), str, where, "an answer's 'text'"))
                is_impossible = qa.get("is_impossible", False) if version_2 else False
                if not isinstance(is_impossible, bool):
                    raise DataError(f"{where}: 'is_impossible' must be true or false, got {is_impossible!r}")
                first = (answers[0]["text"], answers[0].get("answer_start")) if answers else None
                reader.add(where, qa.get("id"), qa.get("question"), context, texts, first, is_impossible)


def _read_mrqa_jsonl(reader: _Reader, path: str):
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
        entry = _require(_load_json(path, line, number), dict, where_line, "a jsonl line")
        if "header" in entry:
            reader.stats.header_lines += 1
            continue
        context = _require(entry.get("context"), str, where_line, "'context'")
        for k, qa in enumerate(_require(entry.get("qas"), list, where_line, "'qas'")):
            where = f"{where_line}: qas[{k}]"
            _require(qa, dict, where, "a question")
            detected = _require(qa.get("detected_answers", []), list, where, "'detected_answers'")
            training_answer = None
            if detected:
                first = _require(detected[0], dict, where, "a detected answer")
                spans = _require(first.get("char_spans"), list, where, "'char_spans'")
                span = spans[0] if spans else None
                if not (isinstance(span, list) and len(span) == 2 and all(_is_int(v) for v in span)):
                    raise DataError(f"{where}: the first char_spans entry {span!r} is not [start, end]")
                start, end = span  # inclusive end
                inside = 0 <= start <= end < len(context)
                training_answer = (context[start : end + 1] if inside else "", start)
            answers = qa.get("answers")
            if answers is None:
                answers = [_require(d, dict, where, "a detected answer").get("text") for d in detected]
            answers = _require(answers, list, where, "'answers'")
            for answer in answers:
                _require(answer, str, where, "an answer")
            reader.add(where, qa.get("qid"), qa.get("question"), context, answers, training_answer, False)


def _read_squad_tfds(reader: _Reader, builder, split: str):
    where_split = f"TFDS {reader.task.tfds_name} {split}"
    for record in tfds_records(builder, split):
        qid = as_text(record["id"])
        texts = [as_text(t) for t in record["answers"]["text"]]
        starts = [int(s) for s in record["answers"]["answer_start"]]
        is_impossible = bool(record.get("is_impossible", False)) if reader.task.version_2 else False
        first = (texts[0], starts[0]) if texts else None
        reader.add(f"{where_split} id {qid}", qid, as_text(record["question"]), as_text(record["context"]), texts,
                   first, is_impossible)


def read_qa_examples(task, data_dir, split: str, tfds_data_dir=None, skip_bad_answers: bool = False,
                     stats: DataStats | None = None) -> list[QAExample]:
    """One split of a QA task: `<data_dir>/finetuning_data/<task>/<split>.json` (SQuAD) or
    `<split>.jsonl[.gz]` (MRQA), or TFDS squad/v1.1 | squad/v2.0 prepared in `tfds_data_dir`.

    Training questions need a usable answer (the first SQuAD answer, the first MRQA detected span)
    unless unanswerable; on other splits a bad offset only leaves the answer texts (the gold of
    scoring) and is counted in `stats.unchecked_answers`.

    Raises:
      DataError: a missing file, invalid JSON (names file and line), a malformed record (names
        where), a repeated question id, or a bad training answer (names the question id).
    """
    stats = stats if stats is not None else DataStats()
    reader = _Reader(task, split, skip_bad_answers, stats)
    if tfds_data_dir is not None and task.tfds_name is not None:
        builder = tfds_builder_if_prepared(task.tfds_name, tfds_data_dir, _TFDS_SPLITS[split])
        if builder is not None:
            _read_squad_tfds(reader, builder, _TFDS_SPLITS[split])
            return reader.examples
    directory = task_dir(data_dir, task.name)
    if task.file_format == "squad":
        path = os.path.join(directory, f"{split}.json")
        if not os.path.isfile(path):
            version = "2.0" if task.version_2 else "1.1"
            raise missing_file_error(path, task.name, f"Put SQuAD {version}'s {split}-v{version}.json there as "
                                     f"{split}.json, or pass tfds_data_dir where TFDS {task.tfds_name} is prepared.")
        _read_squad_json(reader, path)
    else:
        path = os.path.join(directory, f"{split}.jsonl")
        if not os.path.isfile(path) and os.path.isfile(path + ".gz"):
            path += ".gz"
        if not os.path.isfile(path):
            raise missing_file_error(path, task.name, f"Put the MRQA 2019 {task.name} {split} file there as "
                                     f"{split}.jsonl (or {split}.jsonl.gz).")
        _read_mrqa_jsonl(reader, path)
    return reader.examples


# ----------------------------------------------------------------------------------------------
# Sub-token character offsets.


def _char_normalizations(tokenizer, words: Sequence[str]) -> dict[str, str]:
    """Each distinct character of `words` as the tokenizer normalizes it on its own ("" when dropped)."""
    chars = sorted({char for word in words for char in word})
    return dict(zip(chars, ("".join(parts) for parts in tokenizer.split_words(chars)))) if chars else {}


def _normalized_chars(word: str, normalizations: Mapping[str, str]) -> tuple[str, list[int]]:
    """`word` normalized character by character, and for each normalized character the index of
    the word character it came from."""
    chars, origins = [], []
    for index, char in enumerate(word):
        chars.append(normalizations[char])
        origins.extend([index] * len(normalizations[char]))
    return "".join(chars), origins


def _piece_lengths(pieces: Sequence[str], basic: str, unk: str) -> list[int] | None:
    """Normalized length of each WordPiece of `basic`, or None when they do not add up to it."""
    if list(pieces) == [unk] and basic != unk:
        return [len(basic)]
    lengths = [len(p[2:]) if i > 0 and p.startswith("##") else len(p) for i, p in enumerate(pieces)]
    if sum(lengths) != len(basic) or 0 in lengths:
        return None
    return lengths


def word_pieces(tokenizer, words: Sequence[str]) -> dict[str, list[tuple[int, int, int]]]:
    """Each distinct word → its sub-tokens as (id, start, end), offsets into the word.

    The word's pieces are the WordPieces of its normalized words (the tokenizer's split_words),
    exactly what tokenizing the word gives. Offsets follow the normalization character by
    character (each character normalized on its own by the tokenizer's rules); a piece that
    cannot be traced gets its basic word's offsets, or, when the basic words cannot be traced
    (normalization across characters, such as NFC composition or a final sigma), the whole word's.
    `qa_serving.context_pieces` computes the same in the graph.
    """
    unique = sorted(set(words))
    if not unique:
        return {}
    basic_words = tokenizer.split_words(unique)
    distinct_basic = sorted({b for bs in basic_words for b in bs})
    basic_ids = dict(zip(distinct_basic, tokenizer.tokenize(distinct_basic))) if distinct_basic else {}
    unk = tokenizer.tokens[tokenizer.special_token_ids.unk]
    normalizations = _char_normalizations(tokenizer, unique)
    result = {}
    for word, basics in zip(unique, basic_words):
        normalized, origins = _normalized_chars(word, normalizations)
        basic_ranges, cursor = [], 0  # normalized offsets of each basic word
        for basic in basics:
            if not normalized.startswith(basic, cursor):
                basic_ranges = None
                break
            basic_ranges.append((cursor, cursor + len(basic)))
            cursor += len(basic)
        pieces = []
        for index, basic in enumerate(basics):
            ids = basic_ids[basic]
            if basic_ranges is None:
                pieces += [(i, 0, len(word)) for i in ids]
                continue
            start, end = basic_ranges[index]
            lengths = _piece_lengths(tokenizer.ids_to_tokens(ids), basic, unk)
            if lengths is None:
                pieces += [(i, origins[start], origins[end - 1] + 1) for i in ids]
                continue
            for i, length in zip(ids, lengths):
                pieces.append((i, origins[start], origins[start + length - 1] + 1))
                start += length
        result[word] = pieces
    return result


# ----------------------------------------------------------------------------------------------
# Featurization.


def _is_max_context(spans: Sequence[tuple[int, int]], span_index: int, position: int) -> bool:
    """Whether span `span_index` gives sub-token `position` (document index) its most context."""
    best_score, best_index = None, None
    for index, (start, length) in enumerate(spans):
        end = start + length - 1
        if position < start or position > end:
            continue
        score = min(position - start, end - position) + 0.01 * length
        if best_score is None or score > best_score:
            best_score, best_index = score, index
    return best_index == span_index


def doc_spans(n_tokens: int, max_tokens: int, doc_stride: int) -> list[tuple[int, int]]:
    """(start, length) windows of at most `max_tokens` over `n_tokens` document sub-tokens, each
    starting min(length, doc_stride) after the previous, the last one reaching the end. An empty
    document gets one empty span (so every question has a feature)."""
    spans, start = [], 0
    while True:
        length = min(n_tokens - start, max_tokens)
        spans.append((start, length))
        if start + length >= n_tokens:
            return spans
        start += min(length, doc_stride)


def document_tokens(example: QAExample, pieces: Mapping[str, list]) -> tuple[list, list, list]:
    """The example's document sub-tokens: their ids, word indices and (start, end) character spans
    in the context, from `word_pieces` of its words."""
    doc_ids, doc_words, doc_chars = [], [], []
    for word_index, (word, word_start) in enumerate(zip(example.doc_words, example.word_starts)):
        for token_id, start, end in pieces[word]:
            doc_ids.append(token_id)
            doc_words.append(word_index)
            doc_chars.append((word_start + start, word_start + end))
    return doc_ids, doc_words, doc_chars


def _answer_tokens(example: QAExample, doc_chars: Sequence[tuple[int, int]]) -> tuple[int, int] | None:
    """The first and last document sub-tokens the training answer's characters overlap, or None."""
    text = example.answer_text
    first_char = example.answer_start + len(text) - len(text.lstrip())
    end_char = example.answer_start + len(text.rstrip())
    overlapping = [t for t, (s, e) in enumerate(doc_chars) if s < end_char and e > first_char]
    return (overlapping[0], overlapping[-1]) if overlapping else None


def featurize_qa(examples: Sequence[QAExample], tokenizer, max_seq_length: int, is_training: bool,
                 stats: DataStats | None = None, max_query_length: int = 64, doc_stride: int = 128) -> list[QAFeature]:
    """QAExamples to QAFeatures, one per doc span (see the module docstring).

    Args:
      examples: from `read_qa_examples`.
      tokenizer: a `BertTokenizer`.
      max_seq_length: T.
      is_training: compute answer positions (else they are 0).
      stats: counts truncated questions, multi-span examples, out-of-span training features.
      max_query_length: question sub-tokens kept (64).
      doc_stride: offset between consecutive spans (128).
    """
    if doc_stride < 1:
        raise ValueError(f"doc_stride must be positive, got {doc_stride}")
    stats = stats if stats is not None else DataStats()
    specials = tokenizer.special_token_ids
    questions = tokenizer.tokenize([e.question for e in examples]) if examples else []
    pieces = word_pieces(tokenizer, [w for e in examples for w in e.doc_words])
    features = []
    for example, question in zip(examples, questions):
        if len(question) > max_query_length:
            stats.truncated += 1
            question = question[:max_query_length]
        doc_ids, doc_words, doc_chars = document_tokens(example, pieces)
        answer_tokens = None  # (first, last) document sub-token of the training answer
        if is_training and not example.is_impossible and example.answer_start >= 0:
            answer_tokens = _answer_tokens(example, doc_chars)
            stats.answers_without_tokens += answer_tokens is None
        max_doc_tokens = max_seq_length - len(question) - 3
        if max_doc_tokens < 1:
            raise ValueError(f"max_seq_length {max_seq_length} leaves no room for the document after question "
                             f"{example.qid} ({len(question)} sub-tokens, max_query_length {max_query_length}) and "
                             "3 special tokens")
        spans = doc_spans(len(doc_ids), max_doc_tokens, doc_stride)
        if len(spans) > MAX_SPANS_PER_EXAMPLE:
            raise ValueError(f"question {example.qid} needs {len(spans)} doc spans; feature ids allow "
                             f"{MAX_SPANS_PER_EXAMPLE}. Raise doc_stride or max_seq_length")
        stats.multi_span += len(spans) > 1
        doc_offset = len(question) + 2  # [CLS] question [SEP]
        for span_index, (span_start, span_length) in enumerate(spans):
            tokens = [specials.cls] + list(question) + [specials.sep]
            to_orig, max_context, char_spans = {}, {}, {}
            for i in range(span_length):
                position = doc_offset + i
                to_orig[position] = doc_words[span_start + i]
                max_context[position] = _is_max_context(spans, span_index, span_start + i)
                char_spans[position] = doc_chars[span_start + i]
                tokens.append(doc_ids[span_start + i])
            tokens.append(specials.sep)
            segments = [0] * doc_offset + [1] * (span_length + 1)
            start_position = end_position = 0
            if answer_tokens is not None:
                first, last = answer_tokens
                if span_start <= first and last < span_start + span_length:
                    start_position = first - span_start + doc_offset
                    end_position = last - span_start + doc_offset
                else:
                    stats.answers_out_of_span += 1
            features.append(QAFeature(
                eid=MAX_SPANS_PER_EXAMPLE * example.example_index + span_index, example_index=example.example_index,
                input_ids=pad_to(tokens, max_seq_length, specials.pad),
                input_mask=pad_to([1] * len(tokens), max_seq_length), segment_ids=pad_to(segments, max_seq_length),
                span_index=span_index, start_position=start_position, end_position=end_position,
                is_impossible=float(example.is_impossible), token_to_orig_map=to_orig,
                token_is_max_context=max_context, token_char_spans=char_spans))
    stats.features += len(features)
    return features


# ----------------------------------------------------------------------------------------------
# Post-processing.


@dataclasses.dataclass
class QAPredictions:
    """Predictions for one split of a QA task.

    Attributes:
      predictions: qid → final answer text ("" = no answer: SQuAD 2.0 null_odds > na_threshold,
        or no valid span).
      best_answers: qid → the best span's text before the null threshold ("" if none).
      nbest: qid → up to n_best_size entries {text, probability, start_logit, end_logit}, best
        first (in joint mode start_logit and end_logit are the beam's log-probabilities).
      null_odds: qid → null odds (SQuAD 2.0 only, else empty); higher = more likely unanswerable.
      na_threshold: the threshold applied (SQuAD 2.0), else None.
    """

    predictions: dict
    best_answers: dict
    nbest: dict
    null_odds: dict
    na_threshold: float | None = None


_BEAM_OUTPUTS = ("start_top_log_probs", "start_top_index", "end_top_log_probs", "end_top_index")
_LOGIT_OUTPUTS = ("start_logits", "end_logits")


def _softmax(scores: Sequence[float]) -> list[float]:
    if not scores:
        return []
    top = max(scores)
    exps = [math.exp(s - top) for s in scores]
    total = sum(exps)
    return [e / total for e in exps]


def _best_indexes(logits: np.ndarray, n_best_size: int) -> np.ndarray:
    """The positions of the n_best_size largest logits, largest first (ties: lower position first)."""
    return np.argsort(-logits, kind="stable")[:n_best_size]


def _check_outputs(outputs: Mapping[str, Any], n_features: int, version_2: bool, joint_prediction: bool,
                   answerable_classifier: bool) -> dict:
    """The outputs the mode reads, as arrays; raises ValueError naming what is missing or misshaped."""
    needed = {key: "joint_prediction" for key in _BEAM_OUTPUTS} if joint_prediction else \
        {key: "joint_prediction false" for key in _LOGIT_OUTPUTS}
    if version_2 and answerable_classifier:
        needed["answerable_logit"] = "SQuAD 2.0 with the answerable classifier"
    elif version_2:
        needed.setdefault("start_logits", "SQuAD 2.0 without the answerable classifier")
    missing = [f"{key} ({why})" for key, why in needed.items() if key not in outputs]
    if missing:
        raise ValueError(f"QA outputs lack {', '.join(missing)}; were they made by a head of these hparams?")
    arrays = {key: np.asarray(outputs[key], np.int64 if key.endswith("index") else np.float64) for key in needed}
    expected = {"start_top_log_probs": 2, "start_top_index": 2, "end_top_log_probs": 3, "end_top_index": 3,
                "start_logits": 2, "end_logits": 2, "answerable_logit": 1}
    for key, array in arrays.items():
        if array.ndim != expected[key] or array.shape[0] != n_features:
            raise ValueError(f"QA outputs do not match {n_features} features: {key} has shape {array.shape}, not "
                             f"{expected[key]} dimensions with one row per feature")
    if joint_prediction and (arrays["start_top_index"].shape != arrays["start_top_log_probs"].shape or
                             arrays["end_top_index"].shape != arrays["end_top_log_probs"].shape or
                             arrays["end_top_index"].shape[:2] != arrays["start_top_index"].shape):
        raise ValueError(f"QA outputs {arrays['start_top_index'].shape} / {arrays['end_top_index'].shape} do not "
                         f"match {n_features} features with [N, K] starts and [N, K, K] ends")
    return arrays


def _feature_pairs(arrays: Mapping[str, np.ndarray], row: int, joint_prediction: bool, n_best_size: int):
    """The candidate (start, end, start_score, end_score) of feature `row`, in the original's order."""
    if joint_prediction:
        for i, start in enumerate(arrays["start_top_index"][row]):
            for j, end in enumerate(arrays["end_top_index"][row, i]):
                yield (int(start), int(end), arrays["start_top_log_probs"][row, i],
                       arrays["end_top_log_probs"][row, i, j])
        return
    start_logits, end_logits = arrays["start_logits"][row], arrays["end_logits"][row]  # [T] each
    ends = _best_indexes(end_logits, n_best_size)
    for start in _best_indexes(start_logits, n_best_size):
        for end in ends:
            yield int(start), int(end), start_logits[start], end_logits[end]


def _candidates(arrays, features, rows, joint_prediction, n_best_size, max_answer_length) -> list:
    """Valid spans of a question's features as (score, start_score, end_score, row, start, end), best first."""
    candidates = []
    for row in rows:
        feature = features[row]
        for start, end, start_score, end_score in _feature_pairs(arrays, row, joint_prediction, n_best_size):
            if (start not in feature.token_to_orig_map or end not in feature.token_to_orig_map or
                    not feature.token_is_max_context.get(start, False) or end < start or
                    end - start + 1 > max_answer_length):
                continue
            candidates.append((start_score + end_score, start_score, end_score, row, start, end))
    candidates.sort(key=lambda c: c[0], reverse=True)  # stable: ties keep feature, start, end order
    return candidates


def _nbest(example: QAExample, features, candidates, n_best_size: int) -> list[dict]:
    """The first n_best_size candidates of distinct text, with softmax probabilities over their scores."""
    nbest, seen = [], set()
    for score, start_score, end_score, row, start, end in candidates:
        if len(nbest) >= n_best_size:
            break
        char_spans = features[row].token_char_spans
        text = example.context[char_spans[start][0] : char_spans[end][1]]
        if text in seen:
            continue
        seen.add(text)
        nbest.append({"text": text, "score": score, "start_logit": float(start_score),
                      "end_logit": float(end_score)})
    for entry, probability in zip(nbest, _softmax([e.pop("score") for e in nbest])):
        entry["probability"] = probability
    return [{k: e[k] for k in ("text", "probability", "start_logit", "end_logit")} for e in nbest]


def _null_odds(arrays, rows, best: dict | None, joint_prediction: bool, answerable_classifier: bool) -> float:
    """A SQuAD 2.0 question's null odds from its features' rows (see the module docstring)."""
    if answerable_classifier:
        return float(min(arrays["answerable_logit"][row] for row in rows))
    end_null = (lambda row: 0.0) if joint_prediction else (lambda row: arrays["end_logits"][row, 0])
    score_null = min(arrays["start_logits"][row, 0] + end_null(row) for row in rows)
    best_start, best_end = (best["start_logit"], best["end_logit"]) if best is not None else (0.0, 0.0)
    return float(score_null - best_start - best_end)


def postprocess_qa(examples: Sequence[QAExample], features: Sequence[QAFeature], outputs: Mapping[str, Any],
                   version_2: bool = False, n_best_size: int = 20, max_answer_length: int = 30,
                   na_threshold: float = -2.75, joint_prediction: bool = True,
                   answerable_classifier: bool = True) -> QAPredictions:
    """The model's outputs to answers (see the module docstring).

    Args:
      examples: the split's QAExamples.
      features: their QAFeatures, every example with at least one.
      outputs: arrays in feature order. joint_prediction: start_top_log_probs [N, K],
        start_top_index [N, K], end_top_log_probs [N, K, K], end_top_index [N, K, K] (row i:
        the end candidates of start candidate i); else start_logits and end_logits [N, T].
        SQuAD 2.0 also reads answerable_logit [N] (the logit of "unanswerable") with the
        answerable classifier, start_logits [N, T] without it.
      version_2: compute null odds and blank answers above `na_threshold`.
      n_best_size, max_answer_length: as the original (20, 30 sub-tokens).
      na_threshold: the original's qa_na_threshold.
      joint_prediction, answerable_classifier: the head's hparams.
    """
    arrays = _check_outputs(outputs, len(features), version_2, joint_prediction, answerable_classifier)
    rows_of = collections.defaultdict(list)
    for row, feature in enumerate(features):
        rows_of[feature.example_index].append(row)
    result = QAPredictions({}, {}, {}, {}, na_threshold if version_2 else None)
    for example in examples:
        rows = rows_of.get(example.example_index)
        if not rows:
            raise ValueError(f"question {example.qid} (example {example.example_index}) has no features")
        candidates = _candidates(arrays, features, rows, joint_prediction, n_best_size, max_answer_length)
        nbest = _nbest(example, features, candidates, n_best_size)
        best = next((entry for entry in nbest if entry["text"]), None)  # the original's best non-null entry
        result.nbest[example.qid] = nbest
        result.best_answers[example.qid] = best["text"] if best is not None else ""
        result.predictions[example.qid] = result.best_answers[example.qid]
        if version_2:
            null_odds = _null_odds(arrays, rows, best, joint_prediction, answerable_classifier)
            result.null_odds[example.qid] = null_odds
            if null_odds > na_threshold:
                result.predictions[example.qid] = ""
    return result


def write_qa_outputs(output_dir, predictions: QAPredictions) -> dict[str, str]:
    """Writes predictions.json ({qid: text}), nbest_predictions.json and, for SQuAD 2.0,
    null_odds.json into `output_dir` (each atomically). Returns {file name: path}."""
    output_dir = os.fspath(output_dir)
    files = {"predictions.json": predictions.predictions, "nbest_predictions.json": predictions.nbest}
    if predictions.na_threshold is not None:
        files["null_odds.json"] = predictions.null_odds
    return {name: write_json(os.path.join(output_dir, name), content) for name, content in files.items()}
