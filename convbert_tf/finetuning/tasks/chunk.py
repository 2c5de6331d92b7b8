"""CoNLL-2000 chunking (`chunk`): word-level BIOES tags from a per-token head.

Files: `<data_dir>/finetuning_data/chunk/{train,dev,test}.txt`, one "word POS chunk-tag" line per
word and a blank line between sentences. The tag set is the fixed CoNLL-2000 one (O plus B/I/E/S
of its 11 chunk types) rather than one collected from the files, so label ids never depend on
which splits are present. The head is one dense layer per token, and the loss is summed over
each sentence's words, as the original's tagging tasks (google-research/electra,
finetune/tagging/tagging_tasks.py).

Legend: B batch, T length, C tags.
"""

from __future__ import annotations

import logging
import os
from typing import Sequence

import numpy as np
import tensorflow as tf

from convbert_tf.finetuning import scorers, serving
from convbert_tf.finetuning.examples import (BadRecord, DataError, DataStats, Feature, TaggingExample,
                                             check_max_seq_length, missing_file_error, pad_to, read_text_file,
                                             task_dir)
from convbert_tf.finetuning.tasks.base import Task
from convbert_tf.layers.tagging_head import TaggingHead

logger = logging.getLogger(__name__)

# CoNLL-2000 chunk types; the tag set is O plus B/I/E/S of each.
CHUNK_TYPES = ("ADJP", "ADVP", "CONJP", "INTJ", "LST", "NP", "PP", "PRT", "SBAR", "UCP", "VP")


class ChunkTask(Task):
    """CoNLL-2000 chunking: word first column, chunk tag (IOB) last; tags converted to BIOES.

    Every word's first sub-token carries its tag; sentences longer than max_seq_length − 2
    sub-tokens lose their last words (counted; those words are predicted "O"). Segment ids are 1
    on every real token, [CLS] and [SEP] included, as in the original's tagging tasks.

    Args:
      name: the original's name.
      chunk_types: the chunk types; the tag set is O plus B/I/E/S of each.
      span_rule: how tag sequences are read into chunks, both when the gold IOB tags are
        converted to BIOES and when F1 is scored: "original" or "conlleval" (`scorers.tag_spans`).
    """

    kind = "tagging"

    def __init__(self, name: str = "chunk", chunk_types: Sequence[str] = CHUNK_TYPES, span_rule: str = "original"):
        if span_rule not in scorers.SPAN_RULES:
            raise ValueError(f"chunk_span_rule {span_rule!r} is not one of {scorers.SPAN_RULES}")
        self.name = name
        self.chunk_types = tuple(chunk_types)
        self.span_rule = span_rule
        self.label_list = ("O",) + tuple(f"{p}-{t}" for t in self.chunk_types for p in "BIES")

    def splits(self) -> tuple:
        return ("train", "dev", "test")

    def _check_tag(self, tag: str):
        prefix, _, kind = tag.partition("-")
        if tag != "O" and (prefix not in ("B", "I", "E", "S") or kind not in self.chunk_types):
            raise BadRecord(f"tag {tag!r} is not O or B/I/E/S-<type> with a CoNLL-2000 chunk type "
                            f"({', '.join(self.chunk_types)})")

    def read_examples(self, data_dir, split, *, tfds_data_dir=None, double_unordered=True, skip_bad_rows=False,
                      skip_bad_answers=False, stats=None):
        self._check_split(split)
        stats = stats if stats is not None else DataStats()
        path = os.path.join(task_dir(data_dir, self.name), f"{split}.txt")
        if not os.path.isfile(path):
            raise missing_file_error(path, self.name, "Put the CoNLL-2000 file there (one 'word POS chunk-tag' "
                                     "line per word, a blank line between sentences).")
        examples = []
        words, tags, bad, start_line = [], [], None, 1

        def finish():
            nonlocal words, tags, bad
            if bad is not None:
                stats.skip(*bad)
                stats.skipped += len(words) - 1  # every line of the skipped sentence counts
            elif words:
                examples.append(TaggingExample(self.name, split, len(examples), f"{split}-{start_line}",
                                               tuple(words), tuple(scorers.iob_to_bioes(tags, self.span_rule))))
            words, tags, bad = [], [], None

        lines = read_text_file(path)
        stats.lines += len(lines)
        for number, line in enumerate(lines, start=1):
            fields = line.split()
            if not fields:
                stats.blank_lines += 1
                finish()
                continue
            if fields[0] == "-DOCSTART-":
                stats.docstart_lines += 1
                continue
            where = f"{path}:{number}"
            if not words:
                start_line = number
            words.append(fields[0])
            tags.append(fields[-1])
            if bad is not None:
                continue
            try:
                if len(fields) < 2:
                    raise BadRecord("one column; a line is 'word ... chunk-tag'")
                self._check_tag(fields[-1])
            except BadRecord as e:
                if not skip_bad_rows:
                    raise DataError(f"{where}: {e} (the hparam \"skip_bad_rows\": true skips such sentences)") from None
                bad = (where, f"{e} (sentence skipped)")
        finish()
        stats.examples += len(examples)
        logger.info("%s %s: %d sentences, %d lines skipped", self.name, split, len(examples), stats.skipped)
        return examples

    def featurize(self, examples, tokenizer, max_seq_length, is_training, stats=None, **qa_options):
        if qa_options:
            raise TypeError(f"{self.name} featurize got QA options {sorted(qa_options)}")
        check_max_seq_length(max_seq_length, 2)
        stats = stats if stats is not None else DataStats()
        specials = tokenizer.special_token_ids
        vocabulary = sorted({word for example in examples for word in example.words})
        word_ids = dict(zip(vocabulary, tokenizer.tokenize(vocabulary))) if vocabulary else {}
        label_ids = {label: index for index, label in enumerate(self.label_list)}
        features = []
        for example in examples:
            tokens, tag_ids, weights, positions = [specials.cls], [0], [0.0], []
            truncated = False
            for word, tag in zip(example.words, example.tags):
                pieces = word_ids[word]
                if truncated or len(tokens) + len(pieces) + 1 > max_seq_length:
                    truncated = True
                    positions.append(-1)
                    continue
                if not pieces:
                    stats.words_without_tokens += 1
                    positions.append(-1)
                    continue
                positions.append(len(tokens))
                tag_ids += [label_ids[tag]] + [0] * (len(pieces) - 1)
                weights += [1.0] + [0.0] * (len(pieces) - 1)
                tokens += pieces
            tokens.append(specials.sep)
            tag_ids.append(0)
            weights.append(0.0)
            stats.truncated += truncated
            features.append(Feature(
                eid=example.example_index, example_index=example.example_index,
                input_ids=pad_to(tokens, max_seq_length, specials.pad),
                input_mask=pad_to([1] * len(tokens), max_seq_length),
                segment_ids=pad_to([1] * len(tokens), max_seq_length),
                tag_ids=pad_to(tag_ids, max_seq_length),
                tag_weights=pad_to(weights, max_seq_length, 0.0), word_positions=tuple(positions)))
        stats.features += len(features)
        if stats.truncated:
            logger.info("%s: %d of %d sentences truncated to max_seq_length %d", self.name, stats.truncated,
                        len(examples), max_seq_length)
        return features

    def postprocess(self, examples, features, outputs, **options):
        """outputs["logits"]: [N, T, C]; each word gets the arg-max tag at its first sub-token
        ("O" for words without a position)."""
        logits = np.asarray(outputs["logits"])
        self._check_aligned(logits, features, examples)
        best = np.argmax(logits, axis=-1)  # [N, T]
        return [[self.label_list[best[row, p]] if p >= 0 else "O" for p in feature.word_positions]
                for row, feature in enumerate(features)]

    def score(self, examples, predictions) -> dict:
        """f1, precision, recall of the chunks of one list of BIOES tags per example (one per word),
        read by `span_rule`."""
        if len(predictions) != len(examples):
            raise ValueError(f"{self.name}: {len(predictions)} predictions for {len(examples)} examples")
        return scorers.chunk_f1(predictions, [example.tags for example in examples], self.span_rule)

    # -- model -----------------------------------------------------------------------------------

    def build_head(self, width, dtype, options):
        head = TaggingHead(self.num_labels, dtype=dtype, name=self.name)
        head.build((None, None, width))
        return head

    def head_outputs(self, head, sequence_output, features, training=None):
        return {"logits": head(sequence_output, training=training)}

    def per_example_loss(self, features, outputs, options):
        """The sum over the sentence's tagged words, as the original (not their mean)."""
        weights = features["tag_weights"]  # [B, T]
        token_loss = tf.nn.sparse_softmax_cross_entropy_with_logits(features["tag_ids"], outputs["logits"])  # [B, T]
        return tf.reduce_sum(token_loss * weights, -1)  # [B]

    # -- outputs ---------------------------------------------------------------------------------

    def prediction_row(self, example, prediction):
        return {"guid": example.guid, "words": list(example.words), "prediction": list(prediction),
                "label": list(example.tags)}

    def serving_functions(self, context):
        """serve_text: sentence -> tags, tag_ids [B, S] per word piece (segment id 1 on real tokens,
        as in training)."""

        def predict(inputs):
            tag_ids = tf.argmax(context.head(context.sequence_output(inputs), training=False), -1,
                                output_type=tf.int32)  # [B, S]
            return {"tag_ids": tag_ids, "tags": tf.gather(context.labels, tag_ids)}

        return serving.text_functions(context, predict, pair=False, segment_ids_from_mask=True)

