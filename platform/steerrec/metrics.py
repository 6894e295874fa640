"""Ranking metrics from ranked lists with one relevant item per row; numpy only.

`ranked` is an array [N, >= k] of item indices or ids, best first (padding such as -1
for "no item" never matches a real target); `targets` is [N], the one relevant item per
row. A target that appears twice in a row counts at its first position. Every metric is
the mean over the N rows.

    >>> ranked = np.array([[7, 3, 5], [1, 2, 4]])
    >>> targets = np.array([5, 9])
    >>> recall_at_k(ranked, targets, 3)   # row 0 hits at rank 3, row 1 misses: (1 + 0) / 2
    0.5
    >>> ndcg_at_k(ranked, targets, 3)     # (1 / log2(3 + 1) + 0) / 2 = (0.5 + 0) / 2
    0.25
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)


def _first_hit(ranked: Any, targets: Any, k: int, name: str = "ranked") -> np.ndarray:
    """0-based position of each row's target within its top k, or -1 where it is absent."""
    ranked = np.asarray(ranked)
    targets = np.asarray(targets)
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive int, got {k!r}")
    if ranked.ndim != 2:
        raise ValueError(f"{name} must be 2-D [N, >= k], got shape {ranked.shape}")
    if ranked.shape[1] < k:
        raise ValueError(f"{name} has {ranked.shape[1]} columns, fewer than k={k}")
    if targets.ndim != 1 or targets.shape[0] != ranked.shape[0]:
        raise ValueError(f"targets must be 1-D with {ranked.shape[0]} rows like {name}, got shape {targets.shape}")
    if ranked.shape[0] == 0:
        raise ValueError(f"{name} has no rows: a metric over zero examples is undefined")
    match = ranked[:, :k] == targets[:, None]  # [N, k]
    return np.where(match.any(axis=1), match.argmax(axis=1), -1)


def recall_at_k(ranked: Any, targets: Any, k: int) -> float:
    """Share of rows whose target is in the top k.

    >>> recall_at_k(np.array([[4, 2], [3, 1]]), np.array([2, 0]), 2)   # hit, miss: 1/2
    0.5
    """
    return float(np.mean(_first_hit(ranked, targets, k) >= 0))


def hit_rate_at_k(ranked: Any, targets: Any, k: int) -> float:
    """HR@k; with one relevant item per row it is recall@k.

    >>> hit_rate_at_k(np.array([[4, 2], [3, 1]]), np.array([2, 0]), 1)   # 2 is at rank 2: 0/2
    0.0
    """
    return recall_at_k(ranked, targets, k)


def ndcg_rows(ranked: Any, targets: Any, k: int) -> np.ndarray:
    """Per-row NDCG@k [N] (float64): 1 / log2(rank + 1) for a 1-based rank <= k, else 0.

    >>> ndcg_rows(np.array([[9, 8, 5], [5, 1, 2]]), np.array([5, 7]), 3).tolist()
    [0.5, 0.0]
    """
    pos = _first_hit(ranked, targets, k)
    return np.where(pos >= 0, 1.0 / np.log2(np.maximum(pos, 0) + 2.0), 0.0)


def mrr_rows(ranked: Any, targets: Any, k: int) -> np.ndarray:
    """Per-row reciprocal rank within the top k [N] (float64), 0 when the target is absent.

    >>> mrr_rows(np.array([[9, 5], [5, 9]]), np.array([5, 3]), 2).tolist()
    [0.5, 0.0]
    """
    pos = _first_hit(ranked, targets, k)
    return np.where(pos >= 0, 1.0 / (np.maximum(pos, 0) + 1.0), 0.0)


def ndcg_at_k(ranked: Any, targets: Any, k: int) -> float:
    """NDCG@k with one relevant item: 1 / log2(rank + 1) for a 1-based rank <= k, else 0.

    The ideal DCG is 1 (the target at rank 1), so DCG is NDCG.

    >>> ndcg_at_k(np.array([[9, 8, 5]]), np.array([5]), 3)   # rank 3: 1 / log2(4) = 0.5
    0.5
    """
    return float(np.mean(ndcg_rows(ranked, targets, k)))


def mrr_at_k(ranked: Any, targets: Any, k: int) -> float:
    """MRR@k: 1 / rank for a 1-based rank <= k, else 0.

    >>> mrr_at_k(np.array([[9, 5], [5, 9]]), np.array([5, 5]), 2)   # (1/2 + 1/1) / 2
    0.75
    """
    return float(np.mean(mrr_rows(ranked, targets, k)))


def m_at_k(ranked_pos: Any, ranked_neg: Any, targets: Any, k: int) -> float:
    """Mender's combined hit rate m@k for sentiment following (Sec. 3.5, App. D.1).

    Row i is one (positive, negative) preference pair about item targets[i]:
    ranked_pos[i] is the ranking under the positive preference, ranked_neg[i] under the
    negative one. m = 1[target in top k of ranked_pos] * (1 - 1[target in top k of
    ranked_neg]), averaged over pairs.

    >>> pos = np.array([[1, 2], [1, 2], [3, 4]])
    >>> neg = np.array([[5, 6], [2, 6], [5, 6]])
    >>> m_at_k(pos, neg, np.array([2, 2, 2]), 2)   # (1*1 + 1*0 + 0*1) / 3
    0.3333333333333333
    """
    hit_pos = _first_hit(ranked_pos, targets, k, "ranked_pos") >= 0
    hit_neg = _first_hit(ranked_neg, targets, k, "ranked_neg") >= 0
    if hit_pos.shape != hit_neg.shape:
        raise ValueError(
            f"ranked_pos and ranked_neg must have the same rows, got {hit_pos.shape[0]} and {hit_neg.shape[0]}"
        )
    return float(np.mean(hit_pos & ~hit_neg))


def ranking_metrics(ranked: Any, targets: Any, ks: Sequence[int] = (5, 10)) -> dict[str, float]:
    """recall@k, ndcg@k and mrr@k for every k, keyed like "recall@10".

    >>> ranking_metrics(np.array([[9, 5]]), np.array([5]), ks=(1, 2))["ndcg@2"]   # 1/log2(3)
    0.6309297535714575
    """
    out: dict[str, float] = {}
    for k in ks:
        out[f"recall@{k}"] = recall_at_k(ranked, targets, k)
        out[f"ndcg@{k}"] = ndcg_at_k(ranked, targets, k)
        out[f"mrr@{k}"] = mrr_at_k(ranked, targets, k)
    return out


def standard_error(values: Sequence[float] | np.ndarray) -> float:
    """Standard error of the mean over rows (sample std, ddof=1, / sqrt N); 0 below 2 rows.

    By hand: [1, 0, -0.5] -> sample std sqrt(7/12), se sqrt(7/36) = 0.441.
    """
    x = np.asarray(values, dtype=np.float64)
    return float(x.std(ddof=1) / np.sqrt(x.size)) if x.size > 1 else 0.0


def summarize(values_per_seed: Sequence[Mapping[str, float]]) -> dict[str, dict[str, float | int]]:
    """Mean and sample standard deviation (ddof=1) of each metric over seeds.

    Every seed must report the same metric names. With one seed the std is NaN (it is
    not defined), not 0.

    >>> summarize([{"recall@10": 0.1}, {"recall@10": 0.3}])   # std = sqrt(2 * 0.1**2 / 1)
    {'recall@10': {'mean': 0.2, 'std': 0.1414213562373095, 'n': 2}}
    """
    if len(values_per_seed) == 0:
        raise ValueError("summarize needs at least one seed's metrics, got none")
    names = list(values_per_seed[0])
    for i, values in enumerate(values_per_seed):
        if set(values) != set(names):
            missing = sorted(set(names) - set(values))
            extra = sorted(set(values) - set(names))
            raise ValueError(f"seed {i} reports different metrics from seed 0: missing {missing}, extra {extra}")
    n = len(values_per_seed)
    out: dict[str, dict[str, float | int]] = {}
    for name in names:
        column = np.array([float(values[name]) for values in values_per_seed])
        std = float(np.std(column, ddof=1)) if n > 1 else math.nan
        out[name] = {"mean": float(np.mean(column)), "std": std, "n": n}
    return out
