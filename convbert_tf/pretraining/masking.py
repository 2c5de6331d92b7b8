"""Dynamic masking for the generator's MLM task, and gather/scatter at masked positions.

Legend:
    B  batch size
    T  sequence length (static: it fixes P)
    P  masked positions per sequence, N_max = int((mask_prob + 0.005) · T) by default
    ...  any trailing dimensions of a gathered sequence (e.g. D hidden)

Reference: `mask` in pretrain/pretrain_helpers.py of google-research/electra (which ConvBERT's
release uses unchanged), including its duplicate-position behaviour: a position drawn twice
gets the two sampled ids averaged by `scatter_update`. Everything here is a pure function built from
stateless random ops, so it runs in `tf.data` map functions, under
`tf.function(jit_compile=True)` (static shapes), and gives the same result for the same
seed.
"""

from __future__ import annotations

from typing import Sequence

import tensorflow as tf


def max_predictions_for(max_seq_length: int, mask_prob: float = 0.15) -> int:
    """N_max = int((mask_prob + 0.005) · T), the original's default (19 for 0.15 and 128)."""
    return int((mask_prob + 0.005) * max_seq_length)


def gather_positions(sequence: tf.Tensor, positions: tf.Tensor) -> tf.Tensor:
    """Picks `sequence[b, positions[b, p], ...]`.

    Args:
        sequence: [B, T, ...] any dtype.
        positions: [B, P] integer indices in [0, T).

    Returns:
        [B, P, ...] with the dtype of `sequence`.
    """
    return tf.gather(sequence, positions, batch_dims=1)  # [B, P, ...]


def scatter_positions(
    ids: tf.Tensor, positions: tf.Tensor, updates: tf.Tensor, weights: tf.Tensor
) -> tf.Tensor:
    """Writes `updates[b, p]` into `ids[b, positions[b, p]]` for every slot with weight > 0.

    Slots with weight 0 are ignored wherever they point (the masking code gives them
    position 0). When several weighted slots name the same position, the LAST such slot
    (highest p) wins: a deterministic rule, unlike the original's `scatter_update`, which
    averaged duplicate updates into an arbitrary token id. Positions outside
    [0, T) match nothing and are ignored.

    Args:
        ids: [B, T] integer ids.
        positions: [B, P] integer positions.
        updates: [B, P] new ids (cast to the dtype of `ids`).
        weights: [B, P] numeric; > 0 marks a real slot.

    Returns:
        [B, T] ids with the updates applied.
    """
    ids = tf.convert_to_tensor(ids)
    updates = tf.cast(updates, ids.dtype)
    positions = tf.cast(positions, tf.int32)
    length = tf.shape(ids)[1]
    num_slots = tf.shape(positions)[1]
    hits = tf.equal(positions[:, :, None], tf.range(length)[None, None, :])  # [B, P, T]
    hits = tf.logical_and(hits, (weights > 0)[:, :, None])  # [B, P, T]
    slot_number = tf.range(1, num_slots + 1)[None, :, None]  # [1, P, 1]
    last_slot = tf.reduce_max(tf.where(hits, slot_number, 0), axis=1)  # [B, T], 0 = no hit
    written = tf.gather(updates, tf.maximum(last_slot - 1, 0), batch_dims=1)  # [B, T]
    return tf.where(last_slot > 0, written, ids)  # [B, T]


def hide_positions(
    input_ids: tf.Tensor, positions: tf.Tensor, masks_slot: tf.Tensor, mask_id: int
) -> tf.Tensor:
    """Writes `mask_id` at every position named by a slot that chose [MASK]; nothing else changes.

    A slot that keeps its token writes nothing, so a position filled by several slots becomes
    [MASK] if ANY of them chose [MASK], whatever the order: the original's rule (its kept
    slots point at position 0, which its `scatter_update` ignores).

    Args:
        input_ids: [B, T] integer ids.
        positions: [B, P] integer positions.
        masks_slot: [B, P] bool or 0/1; true for a weighted slot whose token becomes [MASK].
        mask_id: id of [MASK].

    Returns:
        [B, T] ids with [MASK] written in.
    """
    input_ids = tf.convert_to_tensor(input_ids)
    mask_ids = tf.fill(tf.shape(positions), tf.constant(mask_id, input_ids.dtype))  # [B, P]
    return scatter_positions(
        input_ids, positions, mask_ids, tf.cast(masks_slot, tf.float32)
    )  # [B, T]


def _seed_pair(seed) -> tf.Tensor:
    """A stateless-RNG seed of shape [2] from an int, a pair, or a [2] integer tensor."""
    seed = tf.convert_to_tensor(seed)
    if not seed.dtype.is_integer:
        raise ValueError(f"mask_tokens: seed must be integer, got dtype {seed.dtype.name}.")
    seed = tf.cast(seed, tf.int64)
    if seed.shape.rank == 0:
        return tf.stack([tf.constant(0, tf.int64), seed])  # [2]
    if seed.shape.as_list() != [2]:
        raise ValueError(
            f"mask_tokens: seed must be an int or a pair of ints, got shape {seed.shape}."
        )
    return seed


def mask_tokens(
    input_ids: tf.Tensor,
    input_mask: tf.Tensor,
    *,
    mask_id: int,
    special_ids: Sequence[int],
    seed,
    mask_prob: float = 0.15,
    max_predictions_per_seq: int | None = None,
    keep_prob: float = 0.15,
    sample_with_replacement: bool = False,
) -> dict[str, tf.Tensor]:
    """Chooses positions to predict and hides them, as the original's dynamic masking
    (`mask` in ELECTRA's pretrain/pretrain_helpers.py).

    Per sequence b:
      * candidates: real tokens (input_mask = 1) whose id is not in `special_ids` and is
        not `mask_id` ([CLS], [SEP], [MASK]);
      * n_b = max(1, min(P, round(mask_prob · Σ_t input_mask[b, t]))) with TF's
        round-half-to-even, as the original; note that Σ input_mask counts [CLS] and [SEP];
      * slots 0..n_b−1 get weight 1, the others weight 0, position 0 and id 0;
      * each weighted slot chooses [MASK] with probability 1 − keep_prob (0.85) and keeps
        the original id otherwise; a position becomes `mask_id` when a slot at it chose
        [MASK]. There is no random-token replacement.

    Position sampling:
      * default (`sample_with_replacement=False`): n_b distinct candidates, uniformly
        (random scores, top-k over candidates). If a sequence has fewer than n_b
        candidates, only as many slots as there are candidates get weight 1.
      * `sample_with_replacement=True` reproduces the original's sampling: P independent
        uniform draws over the candidates (the original's `categorical`; here an
        equivalent inverse-CDF draw that XLA can compile), so a position can fill
        several weighted slots; all n_b slots keep weight 1 and the MLM loss counts a
        duplicated position several times, as in the original. Such a position becomes
        [MASK] if any of its slots chose [MASK] (the original's rule, `hide_positions`).
        (The generator's samples are scattered later; there the original averaged two
        samples at one position into ⌊(a+b)/2⌋, an arbitrary token id, which is
        not reproduced: the last slot wins, see `scatter_positions`.)
    A sequence without any candidate (e.g. all padding) gets weight 0 in every slot.

    Determinism: the same inputs and seed give the same result in eager and graph mode,
    and again under XLA; XLA's random bits differ from the CPU kernels', so an XLA
    result differs from the eager one for the same seed (same distribution).

    Args:
        input_ids: [B, T] integer ids; T must be static.
        input_mask: [B, T] 1 on real tokens, 0 on padding.
        mask_id: id of [MASK].
        special_ids: ids never chosen, normally ([CLS], [SEP], [MASK]).
        seed: int, pair of ints or [2] integer tensor for the stateless random ops; the
            result is a deterministic function of the inputs and the seed.
        mask_prob: fraction of real tokens to predict.
        max_predictions_per_seq: P; defaults to int((mask_prob + 0.005) · T).
        keep_prob: probability that a chosen token is left unchanged.
        sample_with_replacement: reproduce the original's sampling (see above).

    Returns:
        dict with `masked_input_ids` [B, T] int32, `masked_lm_positions` [B, P] int32,
        `masked_lm_ids` [B, P] int32 (original ids, 0 where weight 0) and
        `masked_lm_weights` [B, P] float32.
    """
    input_ids, input_mask, num_slots = _checked_inputs(
        input_ids, input_mask, mask_prob, keep_prob, max_predictions_per_seq)
    position_seed, replace_seed = tf.unstack(
        tf.random.experimental.stateless_split(_seed_pair(seed), 2)
    )  # [2], [2]
    is_candidate = _candidates(input_ids, input_mask, special_ids, mask_id)  # [B, T]
    num_candidates = tf.reduce_sum(tf.cast(is_candidate, tf.int32), axis=1)  # [B]
    num_to_predict = _num_to_predict(input_mask, mask_prob, num_slots)  # [B]

    sample = _sample_with_replacement if sample_with_replacement else _sample_distinct
    positions, is_weighted = sample(is_candidate, num_candidates, num_to_predict, num_slots, position_seed)

    masked_lm_positions = tf.where(is_weighted, positions, 0)  # [B, P]
    masked_lm_ids = tf.where(
        is_weighted, gather_positions(input_ids, masked_lm_positions), 0
    )  # [B, P]
    masked_lm_weights = tf.cast(is_weighted, tf.float32)  # [B, P]

    batch_size = tf.shape(input_ids)[0]
    replace_draw = tf.random.stateless_uniform([batch_size, num_slots], seed=replace_seed)  # [B, P]
    masks_slot = tf.logical_and(is_weighted, replace_draw < 1.0 - keep_prob)  # [B, P]
    masked_input_ids = hide_positions(input_ids, masked_lm_positions, masks_slot, mask_id)  # [B, T]
    return {
        "masked_input_ids": masked_input_ids,
        "masked_lm_positions": masked_lm_positions,
        "masked_lm_ids": masked_lm_ids,
        "masked_lm_weights": masked_lm_weights,
    }


def _checked_inputs(input_ids, input_mask, mask_prob, keep_prob, max_predictions_per_seq):
    """`mask_tokens`' arguments checked: (input_ids [B, T] int32, input_mask [B, T] int32, P)."""
    input_ids = tf.cast(tf.convert_to_tensor(input_ids), tf.int32)  # [B, T]
    input_mask = tf.cast(tf.convert_to_tensor(input_mask), tf.int32)  # [B, T]
    if input_ids.shape.rank != 2 or input_ids.shape[1] is None:
        raise ValueError(
            "mask_tokens: input_ids must be [B, T] with a static T, got shape "
            f"{input_ids.shape}."
        )
    if not input_mask.shape.is_compatible_with(input_ids.shape):
        raise ValueError(
            f"mask_tokens: input_mask shape {input_mask.shape} does not match input_ids "
            f"shape {input_ids.shape}."
        )
    seq_length = input_ids.shape[1]
    if not 0.0 < mask_prob <= 1.0:
        raise ValueError(f"mask_tokens: mask_prob must be in (0, 1], got {mask_prob}.")
    if not 0.0 <= keep_prob <= 1.0:
        raise ValueError(f"mask_tokens: keep_prob must be in [0, 1], got {keep_prob}.")
    if max_predictions_per_seq is None:
        max_predictions_per_seq = max_predictions_for(seq_length, mask_prob)
    num_slots = int(max_predictions_per_seq)
    if not 1 <= num_slots <= seq_length:
        raise ValueError(
            f"mask_tokens: max_predictions_per_seq must be in [1, T={seq_length}], got "
            f"{num_slots}."
        )
    return input_ids, input_mask, num_slots


def _candidates(input_ids, input_mask, special_ids, mask_id) -> tf.Tensor:
    """[B, T] True on real tokens that are not special and not [MASK]."""
    excluded = tf.constant(sorted(set(int(i) for i in special_ids) | {int(mask_id)}), tf.int32)
    is_special = tf.reduce_any(tf.equal(input_ids[:, :, None], excluded), axis=-1)  # [B, T]
    return tf.logical_and(tf.equal(input_mask, 1), tf.logical_not(is_special))  # [B, T]


def _num_to_predict(input_mask, mask_prob, num_slots) -> tf.Tensor:
    """[B] n_b = max(1, min(P, round(mask_prob · Σ_t input_mask[b, t]))), round half to even."""
    num_tokens = tf.reduce_sum(tf.cast(input_mask, tf.float32), axis=1)  # [B]
    num_to_predict = tf.cast(tf.round(num_tokens * mask_prob), tf.int32)  # [B]
    return tf.maximum(1, tf.minimum(num_slots, num_to_predict))  # [B]


def _sample_with_replacement(is_candidate, num_candidates, num_to_predict, num_slots, seed):
    """(positions [B, P], is_weighted [B, P]): P independent uniform draws over the candidates.

    Like the original's `categorical` over log(candidate mask), built from a uniform draw so
    that it also compiles with XLA (StatelessMultinomial has no XLA kernel): draw k, the rank
    among candidates, and find the candidate of that rank.
    """
    batch_size = tf.shape(is_candidate)[0]
    slot = tf.range(num_slots)[None, :]  # [1, P]
    draw = tf.random.stateless_uniform([batch_size, num_slots], seed=seed)  # [B, P]
    rank = tf.cast(draw * tf.cast(num_candidates, tf.float32)[:, None], tf.int32)  # [B, P]
    rank = tf.minimum(rank, tf.maximum(num_candidates - 1, 0)[:, None])  # [B, P]
    candidate_rank = tf.cumsum(tf.cast(is_candidate, tf.int32), axis=1) - 1  # [B, T]
    is_drawn = tf.logical_and(
        tf.equal(candidate_rank[:, None, :], rank[:, :, None]), is_candidate[:, None, :]
    )  # [B, P, T]
    positions = tf.argmax(tf.cast(is_drawn, tf.int32), axis=2, output_type=tf.int32)  # [B, P]
    is_weighted = tf.logical_and(
        slot < num_to_predict[:, None], (num_candidates > 0)[:, None]
    )  # [B, P]
    return positions, is_weighted


def _sample_distinct(is_candidate, num_candidates, num_to_predict, num_slots, seed):
    """(positions [B, P], is_weighted [B, P]): n_b distinct candidates by random scores and top-k."""
    batch_size, seq_length = tf.shape(is_candidate)[0], is_candidate.shape[1]
    slot = tf.range(num_slots)[None, :]  # [1, P]
    scores = tf.random.stateless_uniform([batch_size, seq_length], seed=seed)  # [B, T]
    scores = tf.where(is_candidate, scores, -1.0)  # [B, T], candidates first
    _, positions = tf.math.top_k(scores, k=num_slots)  # [B, P]
    num_weighted = tf.minimum(num_to_predict, num_candidates)  # [B]
    is_weighted = slot < num_weighted[:, None]  # [B, P]
    return positions, is_weighted
