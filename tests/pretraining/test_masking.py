"""Tests of dynamic masking (ELECTRA's `pretrain_helpers.mask`) and of gather/scatter at masked positions."""

import numpy as np
import pytest
import tensorflow as tf

from convbert_tf.pretraining.masking import (
    gather_positions,
    hide_positions,
    mask_tokens,
    max_predictions_for,
    scatter_positions,
)

CLS, SEP, MASK = 101, 102, 103
SPECIAL = (CLS, SEP, MASK)


# ----------------------------------------------------------------------------- twins
def gather_reference(sequence, positions):
    """NumPy twin of gather_positions: out[b, p] = sequence[b, positions[b, p]]."""
    return np.stack([sequence[b][positions[b]] for b in range(len(sequence))])


def scatter_reference(ids, positions, updates, weights):
    """NumPy twin of scatter_positions: weighted slots in order, so the last one wins."""
    out = np.array(ids, copy=True)
    for b in range(ids.shape[0]):
        for p in range(positions.shape[1]):
            if weights[b, p] > 0 and 0 <= positions[b, p] < ids.shape[1]:
                out[b, positions[b, p]] = updates[b, p]
    return out


def original_hide_reference(input_ids, positions, weights, draws, mask_id, keep_prob=0.15):
    """NumPy simulation of the original's [MASK] step with given uniform draws [B, P].

    Unweighted slots point at position 0; so does every slot whose draw keeps its token. All
    slots then scatter-ADD [MASK] into a zero buffer, and each position gets sum // count (its
    number of slots); position 0 is never written.
    """
    pointed = positions * (weights > 0) * (draws < 1.0 - keep_prob)  # [B, P]
    out = np.array(input_ids, copy=True)
    batch_size, seq_length = input_ids.shape
    for b in range(batch_size):
        sums = np.zeros(seq_length, np.int64)
        counts = np.zeros(seq_length, np.int64)
        for p in range(positions.shape[1]):
            sums[pointed[b, p]] += mask_id
            counts[pointed[b, p]] += 1
        for t in range(1, seq_length):
            if counts[t]:
                out[b, t] = sums[t] // counts[t]
    return out


def num_to_predict_reference(input_mask, num_slots, mask_prob=0.15):
    """n = max(1, min(P, round(mask_prob · Σ mask))), float32 and half-to-even like tf.round."""
    num_tokens = input_mask.sum(axis=1).astype(np.float32)
    return np.maximum(1, np.minimum(num_slots, np.round(num_tokens * np.float32(mask_prob))))


# --------------------------------------------------------------------------- fixtures
def make_batch(batch_size, seq_length, seed=0):
    """[CLS] A [SEP] (B [SEP]) then padding; some [MASK] ids mixed into the text."""
    rng = np.random.default_rng(seed)
    input_ids = np.zeros((batch_size, seq_length), np.int32)
    input_mask = np.zeros((batch_size, seq_length), np.int32)
    for b in range(batch_size):
        length = int(rng.integers(3, seq_length + 1))
        row = rng.integers(1000, 30000, size=length).astype(np.int32)
        row[0], row[-1] = CLS, SEP
        if length > 8 and rng.random() < 0.5:
            row[length // 2] = SEP
        row[1:-1][rng.random(length - 2) < 0.05] = MASK
        input_ids[b, :length] = row
        input_mask[b, :length] = 1
    return input_ids, input_mask


def run_mask(input_ids, input_mask, seed=(3, 4), **kwargs):
    out = mask_tokens(input_ids, input_mask, mask_id=MASK, special_ids=SPECIAL, seed=seed,
                      **kwargs)
    return {k: v.numpy() for k, v in out.items()}


def check_invariants(input_ids, input_mask, out, allow_duplicates):
    """Everything `mask_tokens` promises, sequence by sequence; returns (#[MASK], #kept) slots."""
    num_slots = out["masked_lm_positions"].shape[1]
    n = num_to_predict_reference(input_mask, num_slots)
    is_candidate = (input_mask == 1) & ~np.isin(input_ids, SPECIAL)
    num_masked = num_kept = 0
    for b in range(len(input_ids)):
        weights = out["masked_lm_weights"][b]
        positions = out["masked_lm_positions"][b]
        weighted = weights > 0
        assert set(np.unique(weights)) <= {0.0, 1.0}
        # The first slots carry the weight, exactly n of them (or all candidates if fewer).
        expected = n[b] if allow_duplicates else min(n[b], is_candidate[b].sum())
        if is_candidate[b].sum() == 0:
            expected = 0
        assert weighted.sum() == expected, b
        assert np.all(weighted[: int(expected)])
        # Weight-0 slots: position 0 and id 0.
        assert np.all(positions[~weighted] == 0) and np.all(out["masked_lm_ids"][b][~weighted] == 0)
        chosen = positions[weighted]
        # Never a special token or padding.
        assert np.all(is_candidate[b][chosen]), b
        if not allow_duplicates:
            assert len(set(chosen.tolist())) == len(chosen), b
        np.testing.assert_array_equal(out["masked_lm_ids"][b][weighted], input_ids[b][chosen])
        # Chosen tokens become [MASK] or stay; nothing else changes (no random tokens).
        new = out["masked_input_ids"][b]
        untouched = np.ones(input_ids.shape[1], bool)
        untouched[chosen] = False
        np.testing.assert_array_equal(new[untouched], input_ids[b][untouched])
        for position in set(chosen.tolist()):
            assert new[position] in (MASK, input_ids[b][position])
            num_masked += new[position] == MASK
            num_kept += new[position] == input_ids[b][position]
    return num_masked, num_kept


# ----------------------------------------------------------------------------- tests
def test_max_predictions_default():
    assert max_predictions_for(128) == 19
    assert max_predictions_for(512) == 79
    out = run_mask(*make_batch(2, 128))
    assert out["masked_lm_positions"].shape == (2, 19)


@pytest.mark.parametrize("sample_with_replacement", [False, True])
def test_masking_statistics(sample_with_replacement):
    input_ids, input_mask = make_batch(512, 128, seed=1)
    out = run_mask(input_ids, input_mask, sample_with_replacement=sample_with_replacement)
    assert {k: v.dtype for k, v in out.items()} == {
        "masked_input_ids": np.int32, "masked_lm_positions": np.int32,
        "masked_lm_ids": np.int32, "masked_lm_weights": np.float32}
    num_masked, num_kept = check_invariants(input_ids, input_mask, out,
                                            allow_duplicates=sample_with_replacement)
    # 85 % [MASK], 15 % kept; about 4,000 slots, so 5 standard deviations is about 0.03.
    total = num_masked + num_kept
    assert total > 3000
    assert abs(num_masked / total - 0.85) < 5 * np.sqrt(0.85 * 0.15 / total)


def test_positions_are_uniform_over_candidates():
    """2,000 full sequences of length 32: 30 candidates, P = 4; each position ~ 4/30."""
    input_ids = np.tile(np.arange(1000, 1032, dtype=np.int32), (2000, 1))
    input_ids[:, 0], input_ids[:, -1] = CLS, SEP
    input_mask = np.ones_like(input_ids)
    for replacement in (False, True):
        out = run_mask(input_ids, input_mask, sample_with_replacement=replacement)
        assert out["masked_lm_weights"].sum() == 2000 * 4  # n = min(P=4, round(4.8)=5)
        counts = np.bincount(out["masked_lm_positions"].ravel(), minlength=32)
        assert counts[0] == counts[31] == 0
        expected = 2000 * 4 / 30
        assert np.all(np.abs(counts[1:31] - expected) < 6 * np.sqrt(expected)), counts


def test_duplicates_only_with_replacement():
    input_ids, input_mask = make_batch(256, 128, seed=2)
    real = input_mask.sum(axis=1) >= 100
    for replacement, expect_duplicates in ((False, False), (True, True)):
        out = run_mask(input_ids, input_mask, sample_with_replacement=replacement)
        rows_with_duplicates = 0
        for b in np.flatnonzero(real):
            chosen = out["masked_lm_positions"][b][out["masked_lm_weights"][b] > 0]
            rows_with_duplicates += len(set(chosen.tolist())) < len(chosen)
        # 19 draws over ~100–126 candidates: most rows have a duplicate position.
        assert (rows_with_duplicates > real.sum() // 3) == expect_duplicates


def test_few_candidates():
    # row 0: [CLS] a [SEP] -> n = max(1, round(0.45)) = 1, one candidate
    # row 1: [CLS] [SEP]   -> no candidate: all weights 0
    # row 2: 20 real tokens, 17 of them special -> n = round(3.0) = 3 > 2 candidates
    input_ids = np.zeros((3, 20), np.int32)
    input_mask = np.zeros((3, 20), np.int32)
    input_ids[0, :3] = [CLS, 2000, SEP]
    input_ids[1, :2] = [CLS, SEP]
    input_ids[2] = [CLS] + [MASK] * 8 + [1500] + [MASK] * 7 + [1600, MASK, SEP]
    input_mask[0, :3] = input_mask[1, :2] = 1
    input_mask[2] = 1
    out = run_mask(input_ids, input_mask)  # P = int(0.155·20) = 3
    np.testing.assert_array_equal(out["masked_lm_weights"],
                                  [[1, 0, 0], [0, 0, 0], [1, 1, 0]])
    assert out["masked_lm_positions"][0, 0] == 1
    assert sorted(out["masked_lm_positions"][2, :2]) == [9, 17]
    out = run_mask(input_ids, input_mask, sample_with_replacement=True)
    np.testing.assert_array_equal(out["masked_lm_weights"],
                                  [[1, 0, 0], [0, 0, 0], [1, 1, 1]])
    assert set(out["masked_lm_positions"][2]) <= {9, 17}


def test_determinism_for_a_seed():
    input_ids, input_mask = make_batch(16, 64, seed=3)
    first = run_mask(input_ids, input_mask, seed=(7, 8))
    again = run_mask(input_ids, input_mask, seed=tf.constant([7, 8], tf.int64))
    graph = tf.function(lambda a, b: mask_tokens(
        a, b, mask_id=MASK, special_ids=SPECIAL, seed=(7, 8)))(input_ids, input_mask)
    other = run_mask(input_ids, input_mask, seed=(7, 9))
    for key in first:
        np.testing.assert_array_equal(first[key], again[key])
        np.testing.assert_array_equal(first[key], graph[key].numpy())
    assert not np.array_equal(first["masked_lm_positions"], other["masked_lm_positions"])


@pytest.mark.parametrize("sample_with_replacement", [False, True])
def test_xla_compiled(sample_with_replacement):
    input_ids, input_mask = make_batch(64, 64, seed=4)

    @tf.function(jit_compile=True)
    def compiled(ids, mask, seed):
        return mask_tokens(ids, mask, mask_id=MASK, special_ids=SPECIAL, seed=seed,
                           sample_with_replacement=sample_with_replacement)

    out = {k: v.numpy() for k, v in compiled(input_ids, input_mask, tf.constant([5, 6])).items()}
    again = compiled(input_ids, input_mask, tf.constant([5, 6]))
    check_invariants(input_ids, input_mask, out, allow_duplicates=sample_with_replacement)
    for key in out:
        assert out[key].shape == again[key].shape
        np.testing.assert_array_equal(out[key], again[key].numpy())


def test_errors():
    with pytest.raises(ValueError, match="max_predictions_per_seq"):
        run_mask(*make_batch(2, 8), max_predictions_per_seq=9)
    with pytest.raises(ValueError, match="seed"):
        run_mask(*make_batch(2, 8), seed=(1, 2, 3))
    with pytest.raises(ValueError, match="static T"):
        tf.function(lambda ids: mask_tokens(ids, ids, mask_id=MASK, special_ids=SPECIAL,
                                            seed=1)).get_concrete_function(
            tf.TensorSpec([2, None], tf.int32))


def test_gather_positions_matches_numpy():
    rng = np.random.default_rng(5)
    sequence = rng.normal(size=(3, 10, 4)).astype(np.float32)  # [B, T, D]
    positions = rng.integers(0, 10, size=(3, 5)).astype(np.int32)  # [B, P]
    np.testing.assert_array_equal(gather_positions(sequence, positions).numpy(),
                                  gather_reference(sequence, positions))
    ids = rng.integers(0, 100, size=(3, 10)).astype(np.int32)  # [B, T]
    np.testing.assert_array_equal(gather_positions(ids, positions).numpy(),
                                  gather_reference(ids, positions))


def test_scatter_positions_matches_numpy():
    rng = np.random.default_rng(6)
    ids = rng.integers(0, 100, size=(4, 12)).astype(np.int32)  # [B, T]
    positions = rng.integers(0, 12, size=(4, 8)).astype(np.int32)  # [B, P], duplicates
    updates = rng.integers(1000, 2000, size=(4, 8)).astype(np.int32)  # [B, P]
    weights = (rng.random((4, 8)) < 0.6).astype(np.float32)  # [B, P]
    positions[0, :3] = [5, 5, 5]
    weights[0, :3] = [1, 1, 0]  # the weighted duplicate at slot 1 wins; slot 2 is ignored
    got = scatter_positions(ids, positions, updates, weights).numpy()
    np.testing.assert_array_equal(got, scatter_reference(ids, positions, updates, weights))
    assert got[0, 5] == updates[0, 1]
    compiled = tf.function(scatter_positions, jit_compile=True)
    np.testing.assert_array_equal(compiled(ids, positions, updates, weights).numpy(), got)


def test_hide_positions_follows_the_originals_rule():
    """A position drawn several times is [MASK] when any of its draws chose [MASK], in either order."""
    ids = np.array([[CLS, 11, 12, 13, 14, SEP], [CLS, 21, 22, 23, SEP, 0]], np.int32)  # [B, T]
    positions = np.array([[2, 2, 3, 3, 4], [1, 1, 1, 2, 0]], np.int32)  # [B, P]
    weights = np.array([[1, 1, 1, 1, 1], [1, 1, 1, 1, 0]], np.float32)  # [B, P]
    # Position 2: [MASK] then keep; 3: keep then [MASK]; 4: keep. Row 1: position 1 keep, keep,
    # [MASK]; position 2 [MASK]; the weight-0 slot's draw is ignored.
    draws = np.array([[0.1, 0.9, 0.95, 0.3, 0.99], [0.9, 0.97, 0.5, 0.2, 0.1]], np.float32)
    masks_slot = (weights > 0) & (draws < 0.85)
    got = hide_positions(ids, positions, masks_slot, MASK).numpy()
    np.testing.assert_array_equal(got, [[CLS, 11, MASK, MASK, 14, SEP], [CLS, MASK, MASK, 23, SEP, 0]])
    np.testing.assert_array_equal(got, original_hide_reference(ids, positions, weights, draws, MASK))
    rng = np.random.default_rng(8)
    ids = rng.integers(1000, 2000, size=(32, 10)).astype(np.int32)
    ids[:, 0] = CLS
    positions = rng.integers(1, 5, size=(32, 7)).astype(np.int32)  # many duplicates
    weights = (rng.random((32, 7)) < 0.8).astype(np.float32)
    draws = rng.random((32, 7)).astype(np.float32)
    got = hide_positions(ids, positions, (weights > 0) & (draws < 0.85), MASK).numpy()
    np.testing.assert_array_equal(got, original_hide_reference(ids, positions, weights, draws, MASK))


def test_position_drawn_k_times_is_masked_with_probability_one_minus_keep_to_the_k():
    """With replacement: [MASK] with probability 1 - 0.15^k for a position drawn k times (the last
    draw alone would give 0.85 whatever k)."""
    rows = 3000
    input_ids = np.tile(np.array([[CLS, 1001, 1002, 1003, 1004, SEP, 0, 0]], np.int32), (rows, 1))
    input_mask = (input_ids > 0).astype(np.int32)
    out = run_mask(input_ids, input_mask, mask_prob=1.0, max_predictions_per_seq=6,
                   sample_with_replacement=True)  # 6 draws over 4 candidates
    draws_per_position = np.zeros_like(input_ids)
    for b in range(rows):
        np.add.at(draws_per_position[b], out["masked_lm_positions"][b][out["masked_lm_weights"][b] > 0], 1)
    is_mask = out["masked_input_ids"] == MASK
    for k in (1, 2, 3):
        drawn_k = draws_per_position == k
        expected = 1.0 - 0.15**k
        assert abs(is_mask[drawn_k].mean() - expected) < 4 * np.sqrt(0.15 * 0.85 / drawn_k.sum()), k
    assert not is_mask[draws_per_position == 0].any()
