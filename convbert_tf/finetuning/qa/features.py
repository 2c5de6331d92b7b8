"""Extractive QA featurization: word pieces with character offsets, doc-stride spans, model rows.

Legend: N features.

Featurization follows the original (BERT's SQuAD recipe, as in google-research/electra's
finetune/qa/qa_tasks.py): the context is split into words at whitespace, each word into WordPiece
sub-tokens; the question is cut to max_query_length sub-tokens; the document is cut into overlapping
spans of at most max_seq_length − len(question) − 3 sub-tokens, each starting doc_stride after the
previous, and each span becomes one feature `[CLS] question [SEP] span [SEP]` (segments 0 … 0 1 … 1)
with id 1000·example_index + span_index. A sub-token belongs to the "max context" span that gives it
the largest min(left, right) context (+0.01·span length; the earliest span wins a tie). Training
positions are the answer's first and last sub-tokens, or 0 ([CLS]) when the question is unanswerable
or the answer is not wholly inside the span.

A difference from the original about where an answer begins and ends inside a word: every
sub-token keeps the character offsets of its text in the context, so the training answer is the
sub-tokens its characters overlap, and a predicted span's text is the context from the first
character of its start sub-token to the last of its end sub-token. The original reached the same
spans indirectly (`_improve_answer_span` searched for the answer's sub-tokens inside its words;
`get_final_text` re-aligned a de-tokenized prediction to the original word characters and fell
back to whole words). When a sub-token cannot be aligned (normalization that changes a word's
length in ways that cannot be traced per character), its whole word's offsets are used, which is
the original's fallback too.
"""

from __future__ import annotations

from typing import Mapping, Sequence

from convbert_tf.finetuning.examples import DataStats, QAExample, QAFeature, pad_to

MAX_SPANS_PER_EXAMPLE = 1000  # feature ids are 1000·example_index + span_index


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
    `windows.context_pieces` computes the same in the graph.
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
      examples: from a QA task's `read_examples`.
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
        doc = document_tokens(example, pieces)  # ids, word indices, character spans
        answer_tokens = None  # (first, last) document sub-token of the training answer
        if is_training and not example.is_impossible and example.answer_start >= 0:
            answer_tokens = _answer_tokens(example, doc[2])
            stats.answers_without_tokens += answer_tokens is None
        max_doc_tokens = max_seq_length - len(question) - 3
        if max_doc_tokens < 1:
            raise ValueError(f"max_seq_length {max_seq_length} leaves no room for the document after question "
                             f"{example.qid} ({len(question)} sub-tokens, max_query_length {max_query_length}) and "
                             "3 special tokens")
        spans = doc_spans(len(doc[0]), max_doc_tokens, doc_stride)
        if len(spans) > MAX_SPANS_PER_EXAMPLE:
            raise ValueError(f"question {example.qid} needs {len(spans)} doc spans; feature ids allow "
                             f"{MAX_SPANS_PER_EXAMPLE}. Raise doc_stride or max_seq_length")
        stats.multi_span += len(spans) > 1
        for span_index in range(len(spans)):
            features.append(_span_feature(example, question, doc, spans, span_index, answer_tokens,
                                          specials, max_seq_length, stats))
    stats.features += len(features)
    return features


def _span_feature(example: QAExample, question: Sequence[int], doc: tuple, spans: Sequence[tuple[int, int]],
                  span_index: int, answer_tokens: tuple[int, int] | None, specials, max_seq_length: int,
                  stats: DataStats) -> QAFeature:
    """The feature `[CLS] question [SEP] span [SEP]` of one doc span; `doc` is `document_tokens`'."""
    doc_ids, doc_words, doc_chars = doc
    span_start, span_length = spans[span_index]
    doc_offset = len(question) + 2  # [CLS] question [SEP]
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
    return QAFeature(
        eid=MAX_SPANS_PER_EXAMPLE * example.example_index + span_index, example_index=example.example_index,
        input_ids=pad_to(tokens, max_seq_length, specials.pad),
        input_mask=pad_to([1] * len(tokens), max_seq_length), segment_ids=pad_to(segments, max_seq_length),
        span_index=span_index, start_position=start_position, end_position=end_position,
        is_impossible=float(example.is_impossible), token_to_orig_map=to_orig,
        token_is_max_context=max_context, token_char_spans=char_spans)
