"""ExampleBuilder: hand-packed documents, example by example, with every random draw scripted."""
import random

import pytest

from convbert_tf.data.example_builder import ExampleBuilder, goes_to_first_segment

CLS, SEP, PAD = 2, 3, 0


class ScriptedRng:
    """Returns the scripted values in order and fails on any draw that was not scripted."""

    def __init__(self, randoms=(), randints=()):
        self.randoms = list(randoms)
        self.randints = list(randints)
        self.randint_args = []

    def random(self):
        assert self.randoms, "unexpected extra random() draw"
        return self.randoms.pop(0)

    def randint(self, low, high):
        assert self.randints, "unexpected extra randint() draw"
        self.randint_args.append((low, high))
        return self.randints.pop(0)

    def assert_used_up(self):
        assert not self.randoms and not self.randints, (self.randoms, self.randints)


def make(max_length, rng, bug=False):
    return ExampleBuilder(max_length, cls_id=CLS, sep_id=SEP, pad_id=PAD, rng=rng, original_segment_bug=bug)


def feed(builder, sentences):
    """Adds sentences; returns the examples completed, in order."""
    out = []
    for sentence in sentences:
        example = builder.add_sentence(sentence)
        if example is not None:
            out.append(example)
    return out


def expected(max_length, first, second):
    ids = [CLS] + first + [SEP] + (second + [SEP] if second else [])
    segments = [0] * (len(first) + 2) + ([1] * (len(second) + 1) if second else [])
    padding = max_length - len(ids)
    return (
        tuple(ids + [PAD] * padding),
        tuple([1] * len(ids) + [0] * padding),
        tuple(segments + [0] * padding),
    )


def as_tuple(example):
    return example.input_ids, example.input_mask, example.segment_ids


# Sentences with distinct ids so every token's origin is visible.
S1 = [10, 11, 12]  # 3 tokens
S2 = [20, 21, 22, 23]  # 4
S3 = [30, 31, 32, 33, 34]  # 5
S4 = [40, 41, 42, 43, 44]  # 5: S1..S4 = 17 tokens >= 16


def test_fixed_condition_coin_sends_crossing_sentence_to_b():
    # T = 16, target 16, A target (16 - 3) // 2 = 6.
    # S1 -> A (A empty). S2: 3 + 4 >= 6, B empty and 3 < 6 -> coin 0.7 -> B. S3, S4 -> B (B non-empty).
    rng = ScriptedRng(randoms=[0.5, 0.7, 0.9])  # A-target draw, one coin, next-target draw
    builder = make(16, rng)
    [example] = feed(builder, [S1, S2, S3, S4])
    # B = S2 + S3 + S4 (14 tokens) cut to 16 - 3 - 3 = 10.
    assert as_tuple(example) == expected(16, S1, S2 + S3 + S4[:1])
    assert builder.truncated_tokens == 4
    assert builder.target_length == 16
    rng.assert_used_up()


def test_fixed_condition_coin_keeps_crossing_sentence_in_a_and_draws_once():
    # Coin 0.3 -> S2 joins A (7 tokens). S3: 7 + 5 >= 6 and len(A) = 7 is not < 6, so B with no
    # coin drawn (short-circuit). S4 -> B.
    rng = ScriptedRng(randoms=[0.5, 0.3, 0.9])
    builder = make(16, rng)
    [example] = feed(builder, [S1, S2, S3, S4])
    assert as_tuple(example) == expected(16, S1 + S2, S3 + S4[:1])  # B cut to 16 - 7 - 3 = 6
    rng.assert_used_up()


def test_fixed_condition_later_short_sentence_rejoins_a():
    # ELECTRA's fixed condition is checked per sentence: a short sentence that fits under the A
    # target joins A even after B has started. T = 32, A target 14.
    long_a, long_b, short = list(range(100, 110)), list(range(200, 210)), [50, 51]
    rng = ScriptedRng(randoms=[0.5, 0.9, 0.9])  # target draw, coin for long_b (-> B), next target
    builder = make(32, rng)
    examples = feed(builder, [long_a, long_b, short, list(range(300, 312))])
    # 10 + 10 + 2 + 12 = 34 >= 32. long_a -> A; long_b: 20 >= 14, coin 0.9 -> B;
    # short: 12 < 14 -> A; last: 24 >= 14, B non-empty -> B.
    assert [as_tuple(e) for e in examples] == [
        expected(32, long_a + short, (long_b + list(range(300, 312)))[:32 - 12 - 3])
    ]
    rng.assert_used_up()


def test_original_bug_puts_everything_after_the_first_fitting_sentence_in_a():
    # Same input as the first test. S1 fits (3 < 6) -> A; A is now non-empty, so S2..S4 -> A.
    rng = ScriptedRng(randoms=[0.5, 0.9])  # no coin is ever drawn
    builder = make(16, rng, bug=True)
    [example] = feed(builder, [S1, S2, S3, S4])
    assert as_tuple(example) == expected(16, (S1 + S2 + S3 + S4)[:14], [])
    rng.assert_used_up()


def test_original_bug_b_holds_text_that_precedes_a():
    # A target 6. LONG (7 tokens) comes first: it does not fit and B is empty -> B. S1 fits -> A,
    # then S2, S3 join A. The example reads [CLS] S1 S2 S3 [SEP] LONG [SEP]: B is earlier text.
    long = [60, 61, 62, 63, 64, 65, 66]
    rng = ScriptedRng(randoms=[0.5, 0.9])
    builder = make(16, rng, bug=True)
    [example] = feed(builder, [long, S1, S2, S3])  # 7 + 3 + 4 + 5 = 19 >= 16
    # A = S1 + S2 + S3 (12 tokens); B cut to 16 - 12 - 3 = 1 token of LONG.
    assert as_tuple(example) == expected(16, S1 + S2 + S3, long[:1])
    rng.assert_used_up()


def test_original_bug_coin_only_when_b_is_nonempty():
    # Two over-long sentences first. The first -> B with no coin (B empty). The second: A empty,
    # does not fit, B non-empty and 0 < 6 -> coin 0.2 -> A. Everything after joins A.
    first_long, second_long = list(range(60, 67)), list(range(70, 77))
    rng = ScriptedRng(randoms=[0.5, 0.2, 0.9])
    builder = make(16, rng, bug=True)
    [example] = feed(builder, [first_long, second_long, S1])  # 17 >= 16
    assert as_tuple(example) == expected(16, second_long + S1, first_long[:16 - 10 - 3])
    rng.assert_used_up()


def test_original_bug_single_long_sentence_leaves_a_empty():
    # A lone over-long sentence goes to B: the example is [CLS] [SEP] B [SEP].
    sentence = list(range(100, 120))  # 20 >= 16
    rng = ScriptedRng(randoms=[0.5, 0.9])
    [example] = feed(make(16, rng, bug=True), [sentence])
    assert as_tuple(example) == expected(16, [], sentence[:13])
    assert example.segment_ids[:3] == (0, 0, 1)


def test_single_segment_draw_puts_all_in_a_and_truncates_to_t_minus_2():
    rng = ScriptedRng(randoms=[0.05, 0.9])  # < 0.1: A target 100000
    builder = make(16, rng)
    [example] = feed(builder, [S1, S2, S3, S4])
    assert as_tuple(example) == expected(16, (S1 + S2 + S3 + S4)[:14], [])
    assert builder.truncated_tokens == 3


def test_random_target_length_closes_the_next_example_early():
    rng = ScriptedRng(randoms=[0.5, 0.7, 0.01, 0.5, 0.9], randints=[7])
    builder = make(16, rng)
    first = feed(builder, [S1, S2, S3, S4])
    assert builder.target_length == 7 and rng.randint_args == [(5, 16)]
    # Next example: S1 (3) + S2 (4) = 7 >= 7 closes it. A target (7 - 3) // 2 = 2:
    # S1 -> A (empty); S2: 3 + 4 >= 2, B empty but len(A) = 3 is not < 2 -> B, no coin.
    second = feed(builder, [S1, S2])
    assert len(first) == 1
    assert [as_tuple(e) for e in second] == [expected(16, S1, S2)]
    assert builder.target_length == 16
    rng.assert_used_up()


def test_document_boundary_closes_a_short_example():
    rng = ScriptedRng(randoms=[0.5, 0.9])  # A-target draw and next-target draw; S1 -> A, no coin
    builder = make(16, rng)
    assert builder.add_sentence(S1) is None
    assert builder.end_document() is not None
    assert builder.end_document() is None  # nothing pending: no example, no draws
    assert builder.add_sentence([]) is None  # empty sentences change nothing
    rng.assert_used_up()


def test_document_boundary_example_layout():
    rng = ScriptedRng(randoms=[0.5, 0.6, 0.9])  # S2 crosses A target 6 -> coin 0.6 -> B
    builder = make(16, rng)
    assert feed(builder, [S1, S2]) == []
    example = builder.end_document()
    assert example.input_ids == (CLS, 10, 11, 12, SEP, 20, 21, 22, 23, SEP, 0, 0, 0, 0, 0, 0)
    assert example.input_mask == (1,) * 10 + (0,) * 6
    assert example.segment_ids == (0,) * 5 + (1,) * 5 + (0,) * 6


def test_goes_to_first_segment_truth_table():
    never = ScriptedRng()  # any coin draw fails the test
    heads = ScriptedRng(randoms=[0.1])
    # (first_len, second_len, sentence_len, target) -> fixed, original
    assert goes_to_first_segment(0, 0, 50, 6, never) is True
    assert goes_to_first_segment(0, 0, 50, 6, never, original_segment_bug=True) is False
    assert goes_to_first_segment(5, 0, 50, 6, never, original_segment_bug=True) is True
    assert goes_to_first_segment(2, 0, 3, 6, never) is True  # fits
    assert goes_to_first_segment(6, 0, 1, 6, never) is False  # A at target: no coin
    assert goes_to_first_segment(3, 0, 5, 6, heads) is True  # B empty, A under target: coin
    heads.assert_used_up()
    assert goes_to_first_segment(3, 4, 5, 6, never) is False  # B non-empty: no coin
    tails = ScriptedRng(randoms=[0.9])
    assert goes_to_first_segment(0, 4, 9, 6, tails, original_segment_bug=True) is False
    tails.assert_used_up()


def test_rejects_tiny_max_length():
    with pytest.raises(ValueError, match="at least 5"):
        make(4, random.Random(0))


@pytest.mark.parametrize("bug", [False, True])
def test_seeded_stream_is_deterministic_and_well_formed(bug):
    def run(seed):
        data_rng = random.Random(1234)
        builder = make(24, random.Random(seed), bug=bug)
        examples = []
        for _ in range(40):  # documents
            for _ in range(data_rng.randint(1, 8)):
                sentence = [data_rng.randint(5, 99) for _ in range(data_rng.randint(1, 30))]
                example = builder.add_sentence(sentence)
                examples += [example] if example else []
            example = builder.end_document()
            examples += [example] if example else []
        return examples

    examples = run(7)
    assert examples == run(7)
    assert examples != run(8)
    for e in examples:
        length = sum(e.input_mask)
        assert len(e.input_ids) == len(e.input_mask) == len(e.segment_ids) == 24
        assert e.input_mask == (1,) * length + (0,) * (24 - length)
        assert e.input_ids[0] == CLS and e.input_ids[length - 1] == SEP
        assert e.input_ids[length:] == (PAD,) * (24 - length)
        first_sep = e.input_ids.index(SEP)
        assert e.segment_ids[: first_sep + 1] == (0,) * (first_sep + 1)
        assert e.segment_ids[first_sep + 1 : length] == (1,) * (length - first_sep - 1)
        assert e.input_ids.count(SEP) == (2 if length > first_sep + 1 else 1)
