"""Packing tokenized sentences into fixed-length pretraining examples (`ExampleBuilder` of
build_pretraining_dataset.py in google-research/electra, which ConvBERT's release uses).

Legend: T = max_length, the length of every example. A and B are the two segments.

The recipe (ELECTRA's `ExampleBuilder`, which ConvBERT uses unchanged except for the segment bug):

* Sentences (token-id lists, one per corpus line) accumulate until their total length reaches the
  target length; a document boundary also closes the example. Overflow is truncated away, not
  carried into the next example.
* The target length is T, except that after each example, with probability 0.05, the next target
  is uniform in [5, T].
* Segment A's target is 100000 with probability 0.1 (a deliberately single-segment example),
  else (target - 3) // 2. Each sentence, in order, goes to A or B by `goes_to_first_segment`.
* A is cut to T - 2 tokens, B to max(0, T - len(A) - 3). Layout `[CLS] A [SEP]`, then `B [SEP]`
  only when B is non-empty. segment_ids are 0 through A's [SEP] and 1 over B and its [SEP];
  input_mask is 1 on those tokens; everything is padded to T (ids with the [PAD] id, the rest 0).

Random draws happen in the original's order on the injected `rng` (anything with `random()` and
`randint(a, b)`, normally `random.Random(seed)`): the A-target draw, then the 50% coins (drawn
only when the condition reaches them), then the next-target draw (and `randint` when it hits).
"""
import dataclasses
from typing import Optional, Sequence

RANDOM_TARGET_PROB = 0.05
MIN_RANDOM_TARGET = 5
SINGLE_SEGMENT_PROB = 0.1
SINGLE_SEGMENT_TARGET = 100000
SECOND_SEGMENT_COIN = 0.5


@dataclasses.dataclass(frozen=True)
class PretrainingExample:
    """One packed example; every field has length T (= max_length)."""

    input_ids: tuple  # [T]
    input_mask: tuple  # [T]
    segment_ids: tuple  # [T]


def goes_to_first_segment(
    first_len, second_len, sentence_len, first_target, rng, original_segment_bug=False
):
    """Whether the next sentence joins segment A (else B), given the lengths so far.

    Fixed condition (ELECTRA after its commit 1ed0852; the default): A if
    A is empty, or len(A) + len(sentence) < A target, or
    (B is empty and len(A) < A target and coin < 0.5).
    So A is the first part of the span and B the rest, with a random cut inside the sentence that
    crosses A's target. Like ELECTRA, a later short sentence that still fits under A's target
    joins A even after B has started.

    Original condition (`original_segment_bug=True`; ConvBERT and ELECTRA before that commit,
    google-research/electra#20): A if
    A is non-empty, or len(A) + len(sentence) < A target, or
    (B is non-empty and len(A) < A target and coin < 0.5).
    Once A has text every later sentence joins it, so B only ever holds over-long sentences that
    come *before* A's first sentence: B precedes A in the text.

    The coin is `rng.random()`, drawn only when the condition gets that far (short-circuit).
    """
    if original_segment_bug:
        return (
            first_len > 0
            or first_len + sentence_len < first_target
            or (second_len > 0 and first_len < first_target and rng.random() < SECOND_SEGMENT_COIN)
        )
    return (
        first_len == 0
        or first_len + sentence_len < first_target
        or (second_len == 0 and first_len < first_target and rng.random() < SECOND_SEGMENT_COIN)
    )


class ExampleBuilder:
    """Turns a stream of tokenized sentences and document boundaries into pretraining examples.

    Feed sentences with `add_sentence` and close each document with `end_document`; each returns
    the example it completed, or None.

    Args:
      max_length: T, the length of every example (at least 5).
      cls_id, sep_id, pad_id: ids of [CLS], [SEP] and [PAD].
      rng: source of randomness with `random()` and `randint(a, b)` (e.g. `random.Random(seed)`).
      original_segment_bug: build segments with the original release's condition (see
        `goes_to_first_segment`).

    Attributes:
      truncated_tokens: sentence tokens dropped so far because an example overflowed T.
    """

    def __init__(self, max_length, cls_id, sep_id, pad_id, rng, original_segment_bug=False):
        if max_length < MIN_RANDOM_TARGET:
            raise ValueError(f"max_length must be at least {MIN_RANDOM_TARGET}, got {max_length}")
        self.max_length = max_length
        self.cls_id = cls_id
        self.sep_id = sep_id
        self.pad_id = pad_id
        self.rng = rng
        self.original_segment_bug = original_segment_bug
        self.target_length = max_length
        self.truncated_tokens = 0
        self._sentences = []
        self._length = 0

    def add_sentence(self, token_ids: Sequence[int]) -> Optional[PretrainingExample]:
        """Adds one sentence; returns an example once the accumulated length reaches the target."""
        if not token_ids:
            return None  # The original appends it too, but an empty sentence changes nothing.
        self._sentences.append(list(token_ids))
        self._length += len(token_ids)
        if self._length >= self.target_length:
            return self._create_example()
        return None

    def end_document(self) -> Optional[PretrainingExample]:
        """Closes the current document; returns its last example if any sentence is pending."""
        if self._length == 0:
            return None
        return self._create_example()

    def _create_example(self) -> PretrainingExample:
        if self.rng.random() < SINGLE_SEGMENT_PROB:
            first_target = SINGLE_SEGMENT_TARGET
        else:
            first_target = (self.target_length - 3) // 2  # room for [CLS] A [SEP] B [SEP]
        first, second = [], []
        for sentence in self._sentences:
            if goes_to_first_segment(
                len(first), len(second), len(sentence), first_target, self.rng, self.original_segment_bug
            ):
                first += sentence
            else:
                second += sentence
        kept_first = first[: self.max_length - 2]
        kept_second = second[: max(0, self.max_length - len(kept_first) - 3)]
        self.truncated_tokens += len(first) + len(second) - len(kept_first) - len(kept_second)

        self._sentences = []
        self._length = 0
        if self.rng.random() < RANDOM_TARGET_PROB:
            self.target_length = self.rng.randint(MIN_RANDOM_TARGET, self.max_length)
        else:
            self.target_length = self.max_length
        return self._pack(kept_first, kept_second)

    def _pack(self, first, second) -> PretrainingExample:
        input_ids = [self.cls_id] + first + [self.sep_id]
        segment_ids = [0] * len(input_ids)
        if second:
            input_ids += second + [self.sep_id]
            segment_ids += [1] * (len(second) + 1)
        input_mask = [1] * len(input_ids)
        padding = self.max_length - len(input_ids)
        return PretrainingExample(
            input_ids=tuple(input_ids + [self.pad_id] * padding),
            input_mask=tuple(input_mask + [0] * padding),
            segment_ids=tuple(segment_ids + [0] * padding),
        )
