"""Blocked cosine matching against brute force on the full matrix.

Most inputs are small integer vectors: their dot products are exact in float32, whatever
order BLAS sums in, and they tie often, which exercises the lower-index-first rule at
block edges and at the top-k cut.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from steerrec.benchmark.matching import (
    _blocks,
    argmax_per_group,
    bottomk_cosine,
    normalize_rows,
    pair_scores,
    topk_cosine,
    topk_cosine_both,
)

BLOCKS = [1, 3, (7, 5), (16, 64), (40, 13), 1000]


def integer_data(n: int, m: int, d: int = 4, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return (rng.integers(-2, 3, (n, d)).astype(np.float32), rng.integers(-2, 3, (m, d)).astype(np.float32))


def brute(queries, keys, k, *, largest=True, mask=None):
    """Full matrix, stable argsort: ties keep the lower index first; masked pairs give -1."""
    s = queries.astype(np.float64) @ keys.astype(np.float64).T
    if mask is not None:
        s[mask] = -np.inf if largest else np.inf
    order = np.argsort(-s if largest else s, axis=1, kind="stable")[:, :k]
    scores = np.take_along_axis(s, order, axis=1)
    order[np.isinf(scores)] = -1
    return scores.astype(np.float32), order


@pytest.mark.parametrize("block_size", BLOCKS)
@pytest.mark.parametrize("k", [1, 4, 10])
def test_topk_equals_brute_force(block_size, k):
    q, keys = integer_data(37, 53)
    scores, idx = topk_cosine(q, keys, k, block_size=block_size)
    want_scores, want_idx = brute(q, keys, k)
    np.testing.assert_array_equal(idx, want_idx)
    np.testing.assert_array_equal(scores, want_scores)
    assert scores.dtype == np.float32 and idx.dtype == np.int64


@pytest.mark.parametrize("block_size", BLOCKS)
def test_bottomk_equals_brute_force(block_size):
    q, keys = integer_data(29, 41, seed=1)
    scores, idx = bottomk_cosine(q, keys, 5, block_size=block_size)
    want_scores, want_idx = brute(q, keys, 5, largest=False)
    np.testing.assert_array_equal(idx, want_idx)
    np.testing.assert_array_equal(scores, want_scores)


def test_ties_rank_lower_index_first():
    keys = np.array([[1, 0], [0, 1], [1, 0], [1, 0], [0, 1]], dtype=np.float32)
    q = np.array([[1, 0], [0, 1]], dtype=np.float32)
    for block_size in (1, 2, 4):
        _, idx = topk_cosine(q, keys, 2, block_size=block_size)
        assert idx.tolist() == [[0, 2], [1, 4]]
        _, idx = bottomk_cosine(q, keys, 2, block_size=block_size)
        assert idx.tolist() == [[1, 4], [0, 2]]


def test_k_larger_than_keys_returns_all_keys_sorted():
    q, keys = integer_data(6, 4, seed=2)
    scores, idx = topk_cosine(q, keys, 10, block_size=3)
    assert idx.shape == (6, 4)
    np.testing.assert_array_equal(idx, brute(q, keys, 4)[1])


def test_random_normalized_floats_match_brute_force():
    rng = np.random.default_rng(3)
    q, keys = rng.standard_normal((50, 32)), rng.standard_normal((300, 32))
    scores, idx = topk_cosine(q, keys, 7, block_size=(16, 70), normalize=True)
    want_scores, want_idx = brute(normalize_rows(q), normalize_rows(keys), 7)
    np.testing.assert_array_equal(idx, want_idx)
    np.testing.assert_allclose(scores, want_scores, atol=1e-6)
    assert np.all(scores <= 1 + 1e-6)


@pytest.mark.parametrize("block_size", [2, (5, 3), 100])
def test_exclusion_by_ids_in_every_form(block_size):
    q, keys = integer_data(12, 12, seed=4)
    mask = np.eye(12, dtype=bool)
    want = brute(q, keys, 3, mask=mask)
    for exclude in (np.arange(12), np.arange(12)[:, None], [[i] for i in range(12)]):
        scores, idx = topk_cosine(q, keys, 3, block_size=block_size, exclude=exclude)
        np.testing.assert_array_equal(idx, want[1])
        assert not np.any(idx == np.arange(12)[:, None])
    padded = np.full((12, 3), -1)
    padded[:, 0] = np.arange(12)
    padded[0, 1:] = [5, 7]
    mask[0, [5, 7]] = True
    np.testing.assert_array_equal(
        topk_cosine(q, keys, 3, block_size=block_size, exclude=padded)[1], brute(q, keys, 3, mask=mask)[1]
    )


def test_exclusion_by_mask_function_and_bottomk():
    q, keys = integer_data(10, 15, seed=5)

    def same_parity(qi, ki):
        return (qi[:, None] % 2) == (ki[None, :] % 2)

    mask = same_parity(np.arange(10), np.arange(15))
    np.testing.assert_array_equal(
        topk_cosine(q, keys, 4, block_size=(3, 4), exclude=same_parity)[1], brute(q, keys, 4, mask=mask)[1]
    )
    np.testing.assert_array_equal(
        bottomk_cosine(q, keys, 4, block_size=(3, 4), exclude=same_parity)[1],
        brute(q, keys, 4, largest=False, mask=mask)[1],
    )


def test_slots_without_a_key_are_minus_one():
    q, keys = integer_data(3, 4, seed=6)
    exclude = [[0, 1, 2, 3], [1, 2], []]
    scores, idx = topk_cosine(q, keys, 3, block_size=2, exclude=exclude)
    assert idx[0].tolist() == [-1, -1, -1] and np.all(np.isneginf(scores[0]))
    assert set(idx[1, :2].tolist()) == {0, 3} and idx[1, 2] == -1
    assert (idx[2] >= 0).all()
    b_scores, b_idx = bottomk_cosine(q, keys, 3, block_size=2, exclude=exclude)
    assert b_idx[0].tolist() == [-1, -1, -1] and np.all(np.isposinf(b_scores[0]))


@pytest.mark.parametrize("block_size", [1, (4, 7), 64])
def test_both_directions_equal_two_separate_calls(block_size):
    a, b = integer_data(23, 31, seed=7)
    (s_ab, i_ab), (s_ba, i_ba) = topk_cosine_both(a, b, 3, 5, block_size=block_size)
    np.testing.assert_array_equal(i_ab, brute(a, b, 3)[1])
    np.testing.assert_array_equal(i_ba, brute(b, a, 5)[1])
    np.testing.assert_array_equal(s_ba, brute(b, a, 5)[0])


def test_blocks_never_exceed_block_size():
    a, b = integer_data(50, 70, seed=8)
    shapes = [tuple(block.shape) for _, _, block in _blocks(a, b, (16, 32), None, False, 1.0, False)]
    assert max(r for r, _ in shapes) == 16 and max(c for _, c in shapes) == 32
    assert sum(r * c for r, c in shapes) == 50 * 70


def test_pair_scores_and_argmax_per_group():
    a, b = integer_data(5, 6, seed=9)
    a_idx, b_idx = np.array([0, 1, 4, 4, 2]), np.array([5, 0, 0, 3, 1])
    want = np.einsum("nd,nd->n", a[a_idx], b[b_idx])
    np.testing.assert_array_equal(pair_scores(a, a_idx, b, b_idx, chunk=2), want)
    groups = np.array([7, 3, 7, 3, 3, 9])
    scores = np.array([0.2, 0.5, 0.9, 0.5, 0.1, -1.0])
    g, pos = argmax_per_group(groups, scores)
    assert g.tolist() == [3, 7, 9] and pos.tolist() == [1, 2, 5]  # group 3: tie -> position 1


def test_bad_input_raises():
    a, b = integer_data(4, 5, seed=10)
    with pytest.raises(ValueError, match="share d"):
        topk_cosine(a, b[:, :3], 2)
    with pytest.raises(ValueError, match="k must be >= 1"):
        topk_cosine(a, b, 0)
    with pytest.raises(ValueError, match="exclude row 2: key id 9"):
        topk_cosine(a, b, 2, exclude=[[0], [], [9], []])
    with pytest.raises(ValueError, match="one per query"):
        topk_cosine(a, b, 2, exclude=[[0]])
    with pytest.raises(ValueError, match="mask of shape"):
        topk_cosine(a, b, 2, exclude=lambda qi, ki: np.zeros(3, dtype=bool))


def test_matching_imports_no_ray():
    code = "import sys, steerrec.benchmark.matching; print('ray' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
