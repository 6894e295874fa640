"""Cosine matching between two sets of embeddings, in blocks (no Ray here).

The benchmark matches items and preferences by cosine similarity in a sentence embedding
space (Mender, Sec. 3.5 and App. D): for each target item the most (fine-grained) or least
(coarse-grained) similar other item (Eq. 3), for that item the most similar preference
among all users' preferences (Eq. 4), and for each (user, t) the best of the user's own
preferences (Eq. 2, `pair_scores` + `argmax_per_group`). With 1M preferences x 10k items
the full matrix (40 GB) never exists: queries and keys are cut into blocks, each block
product goes through a top-k, and a running top-k per row merges the blocks.

Conventions:
  - inputs are float32 rows assumed L2-normalized (what `embed` writes), so a dot product
    is the cosine; pass ``normalize=True`` otherwise (rows are normalized block by block).
    Inputs must be finite.
  - results are sorted best first; ties rank the lower key index first.
  - ``k`` larger than the number of keys gives ``min(k, m)`` columns; a slot left without
    a key (every remaining key excluded) has index -1 and score -inf (+inf for bottom-k).
  - ``exclude``: per-query key ids to skip (a list of lists, a 2-D int array padded with
    -1, or a 1-D array of one id per query, e.g. ``np.arange(n)`` to skip oneself), or a
    function ``(query_ids [r], key_ids [c]) -> bool mask [r, c]`` (True = skip).

Speed: block products use numpy's BLAS (threads follow OPENBLAS_NUM_THREADS /
OMP_NUM_THREADS, or threadpoolctl), which measured faster than torch.matmul on 2 cores;
selection uses torch.topk (threads follow torch.set_num_threads), far faster than
np.argpartition. benchmarks/matching_scale.py prints both comparisons.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence

import numpy as np
import torch

logger = logging.getLogger(__name__)

MaskFn = Callable[[np.ndarray, np.ndarray], np.ndarray]
Exclude = MaskFn | Sequence[Sequence[int]] | np.ndarray
DEFAULT_BLOCK = (2048, 8192)  # (queries, keys) per block: a 64 MB float32 score block
_NONE = torch.iinfo(torch.int64).max  # index of an empty slot while merging: sorts last

TopK = tuple[np.ndarray, np.ndarray]  # (scores [n, k] float32, indices [n, k] int64)


def normalize_rows(x: np.ndarray) -> np.ndarray:
    """float32 copy of `x` [n, d] with unit-length rows; all-zero rows stay zero."""
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, np.finfo(np.float32).tiny)


def topk_cosine(
    queries: np.ndarray,
    keys: np.ndarray,
    k: int,
    *,
    block_size: int | tuple[int, int] = DEFAULT_BLOCK,
    exclude: Exclude | None = None,
    normalize: bool = False,
    progress: bool = False,
) -> TopK:
    """For each query [n, d], the k most similar keys [m, d]: (scores, indices) [n, min(k, m)]."""
    acc = _RunningTopK(len(queries), _width(k, keys))
    for q0, k0, block in _blocks(queries, keys, block_size, exclude, normalize, 1.0, progress):
        acc.update(block, q0, k0)
    return acc.result(1.0)


def bottomk_cosine(
    queries: np.ndarray,
    keys: np.ndarray,
    k: int,
    *,
    block_size: int | tuple[int, int] = DEFAULT_BLOCK,
    exclude: Exclude | None = None,
    normalize: bool = False,
    progress: bool = False,
) -> TopK:
    """For each query, the k least similar keys, least first (the same code on negated scores)."""
    acc = _RunningTopK(len(queries), _width(k, keys))
    for q0, k0, block in _blocks(queries, keys, block_size, exclude, normalize, -1.0, progress):
        acc.update(block, q0, k0)
    return acc.result(-1.0)


def topk_cosine_both(
    a: np.ndarray,
    b: np.ndarray,
    k_a: int,
    k_b: int,
    *,
    block_size: int | tuple[int, int] = DEFAULT_BLOCK,
    exclude: Exclude | None = None,
    normalize: bool = False,
    progress: bool = False,
) -> tuple[TopK, TopK]:
    """Both directions from one pass of block products: (top k_a of b for each row of a,
    top k_b of a for each row of b). `exclude` is given per row of `a`."""
    acc_a = _RunningTopK(len(a), _width(k_a, b))
    acc_b = _RunningTopK(len(b), _width(k_b, a))
    for q0, k0, block in _blocks(a, b, block_size, exclude, normalize, 1.0, progress):
        acc_a.update(block, q0, k0)
        acc_b.update(block.T.contiguous(), k0, q0)  # topk along rows of a contiguous copy is faster
    return acc_a.result(1.0), acc_b.result(1.0)


def pair_scores(
    a: np.ndarray,
    a_idx: np.ndarray,
    b: np.ndarray,
    b_idx: np.ndarray,
    *,
    chunk: int = 1 << 16,
    normalize: bool = False,
) -> np.ndarray:
    """Cosine of each listed pair: scores [N] float32, scores[j] = a[a_idx[j]] . b[b_idx[j]]."""
    a_idx, b_idx = np.asarray(a_idx, dtype=np.int64), np.asarray(b_idx, dtype=np.int64)
    if a_idx.shape != b_idx.shape or a_idx.ndim != 1:
        raise ValueError(f"a_idx and b_idx must be 1-D of equal length, got {a_idx.shape} and {b_idx.shape}")
    out = np.empty(len(a_idx), dtype=np.float32)
    for s in range(0, len(a_idx), chunk):
        x = np.asarray(a[a_idx[s : s + chunk]], dtype=np.float32)
        y = np.asarray(b[b_idx[s : s + chunk]], dtype=np.float32)
        if normalize:
            x, y = normalize_rows(x), normalize_rows(y)
        out[s : s + chunk] = np.einsum("nd,nd->n", x, y)
    return out


def argmax_per_group(groups: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Segment argmax over a flat array: (distinct groups, sorted; position of each group's
    highest score). Ties go to the lower position. E.g. groups = (user, t) codes, scores =
    `pair_scores` of each of the user's preferences with the target item (Mender Eq. 2)."""
    groups, scores = np.asarray(groups), np.asarray(scores)
    if groups.shape != scores.shape or groups.ndim != 1:
        raise ValueError(f"groups and scores must be 1-D of equal length, got {groups.shape} and {scores.shape}")
    if len(groups) == 0:
        return groups[:0], np.zeros(0, dtype=np.int64)
    order = np.lexsort((np.arange(len(groups)), -scores.astype(np.float64), groups))
    sorted_groups = groups[order]
    first = np.ones(len(order), dtype=bool)
    first[1:] = sorted_groups[1:] != sorted_groups[:-1]
    return sorted_groups[first], order[first]


def _width(k: int, keys: np.ndarray) -> int:
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    return min(k, len(keys))


def _block_shape(block_size: int | tuple[int, int]) -> tuple[int, int]:
    bq, bk = (block_size, block_size) if isinstance(block_size, int) else block_size
    if bq < 1 or bk < 1:
        raise ValueError(f"block_size must be >= 1, got {block_size}")
    return int(bq), int(bk)


def _check(queries: np.ndarray, keys: np.ndarray) -> None:
    if queries.ndim != 2 or keys.ndim != 2 or queries.shape[1] != keys.shape[1]:
        raise ValueError(f"queries [n, d] and keys [m, d] must share d, got {queries.shape} and {keys.shape}")


def _rows(x: np.ndarray, start: int, stop: int, normalize: bool) -> np.ndarray:
    rows = np.ascontiguousarray(x[start:stop], dtype=np.float32)  # a view when already float32
    return normalize_rows(rows) if normalize else rows


def _blocks(
    queries: np.ndarray,
    keys: np.ndarray,
    block_size: int | tuple[int, int],
    exclude: Exclude | None,
    normalize: bool,
    sign: float,
    progress: bool,
) -> Iterator[tuple[int, int, torch.Tensor]]:
    """(q0, k0, sign * scores [r, c]) per block, excluded pairs at -inf; one reused buffer."""
    queries, keys = np.asarray(queries), np.asarray(keys)
    _check(queries, keys)
    bq, bk = _block_shape(block_size)
    n, m = len(queries), len(keys)
    csr = None if exclude is None or callable(exclude) else _exclusion_csr(exclude, n, m)
    buffer = np.empty((min(bq, n), min(bk, m)), dtype=np.float32)
    bar = _progress_bar(-(-n // bq) * -(-m // bk), progress)
    for q0 in range(0, n, bq):
        q = _rows(queries, q0, q0 + bq, normalize)
        q = -q if sign < 0 else q  # negating one factor negates the product exactly
        for k0 in range(0, m, bk):
            kb = _rows(keys, k0, k0 + bk, normalize)
            scores = buffer[: len(q), : len(kb)]
            np.matmul(q, kb.T, out=scores)
            if callable(exclude):
                _mask_fn(scores, exclude, q0, k0)
            elif csr is not None:
                _mask_ids(scores, csr, q0, k0)
            yield q0, k0, torch.from_numpy(scores)
            if bar is not None:
                bar.update(1)
    if bar is not None:
        bar.close()


def _progress_bar(total: int, enabled: bool):
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc="cosine blocks", unit="block")


def _exclusion_csr(exclude: Sequence[Sequence[int]] | np.ndarray, n: int, m: int) -> tuple[np.ndarray, np.ndarray]:
    """(offsets [n + 1], key ids): query i excludes ids[offsets[i]:offsets[i + 1]]."""
    if isinstance(exclude, np.ndarray) and exclude.ndim in (1, 2):
        table = exclude.reshape(len(exclude), -1).astype(np.int64, copy=False)
        valid = table >= 0
        counts, ids = valid.sum(axis=1), table[valid]
    else:
        lists = [np.asarray(row, dtype=np.int64).reshape(-1) for row in exclude]
        counts = np.array([len(row) for row in lists], dtype=np.int64)
        ids = np.concatenate(lists) if lists else np.zeros(0, dtype=np.int64)
    if len(counts) != n:
        raise ValueError(f"exclude has {len(counts)} rows, expected one per query ({n})")
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    bad = np.flatnonzero((ids < 0) | (ids >= m))
    if len(bad):
        row = int(np.searchsorted(offsets, bad[0], side="right") - 1)
        raise ValueError(f"exclude row {row}: key id {int(ids[bad[0]])} outside [0, {m})")
    return offsets, ids


def _mask_ids(scores: np.ndarray, csr: tuple[np.ndarray, np.ndarray], q0: int, k0: int) -> None:
    offsets, ids = csr
    r, c = scores.shape
    lo, hi = offsets[q0], offsets[q0 + r]
    if lo == hi:
        return
    rows = np.repeat(np.arange(r), np.diff(offsets[q0 : q0 + r + 1]))
    cols = ids[lo:hi]
    inside = (cols >= k0) & (cols < k0 + c)
    scores[rows[inside], cols[inside] - k0] = -np.inf


def _mask_fn(scores: np.ndarray, fn: MaskFn, q0: int, k0: int) -> None:
    r, c = scores.shape
    mask = np.asarray(fn(np.arange(q0, q0 + r), np.arange(k0, k0 + c)), dtype=bool)
    if mask.shape != (r, c):
        raise ValueError(f"exclude function returned a mask of shape {mask.shape}, expected {(r, c)}")
    scores[mask] = -np.inf


def _block_topk(block: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The k largest per row [r, k] with exact ties: among equal scores at the cut, the
    lowest columns win (torch.topk alone picks an unspecified one)."""
    r, c = block.shape
    if k >= c:
        return block.clone(), torch.arange(c).expand(r, c).clone()
    vals, idx = torch.topk(block, k + 1, dim=1)  # sorted; the (k+1)-th shows a tie at the cut
    cut, after = vals[:, k - 1], vals[:, k]
    tied = torch.nonzero((cut == after) & torch.isfinite(cut)).flatten().tolist()
    vals, idx = vals[:, :k].clone(), idx[:, :k].clone()
    for row in tied:  # rare with real embeddings; exact for any input
        scores = block[row]
        above = torch.nonzero(scores > cut[row]).flatten()
        equal = torch.nonzero(scores == cut[row]).flatten()[: k - len(above)]
        chosen = torch.cat([above, equal])
        idx[row], vals[row] = chosen, scores[chosen]
    return vals, idx


class _RunningTopK:
    """Top-k per row over column blocks, kept sorted by (score desc, index asc)."""

    def __init__(self, n: int, k: int) -> None:
        self.k = k
        self.vals = torch.full((n, k), -float("inf"), dtype=torch.float32)  # [n, k]
        self.idx = torch.full((n, k), _NONE, dtype=torch.int64)  # [n, k]

    def update(self, block: torch.Tensor, row0: int, col0: int) -> None:
        vals, idx = _block_topk(block, self.k)  # [r, kk]
        rows = slice(row0, row0 + block.shape[0])
        v = torch.cat([self.vals[rows], vals], dim=1)  # [r, k + kk]
        i = torch.cat([self.idx[rows], idx + col0], dim=1)
        by_index = torch.argsort(i, dim=1)
        v, i = v.gather(1, by_index), i.gather(1, by_index)
        best = torch.sort(v, dim=1, descending=True, stable=True).indices[:, : self.k]
        self.vals[rows], self.idx[rows] = v.gather(1, best), i.gather(1, best)

    def result(self, sign: float) -> TopK:
        vals, idx = self.vals.numpy().copy(), self.idx.numpy().copy()
        empty = np.isneginf(vals)
        idx[empty] = -1
        return vals * np.float32(sign), idx
