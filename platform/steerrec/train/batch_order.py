"""Which rows go into which batch: shuffled shards per rank, optionally length-bucketed.

batches = batch_indices(encoded, 256, shuffle=True, seed=epoch, buckets=8)
padding_share(encoded["length"], batches)       # the share of history slots that are padding
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def batch_indices(
    encoded: dict[str, Any],
    batch_size: int,
    shuffle: bool = False,
    seed: int = 0,
    rank: int = 0,
    world_size: int = 1,
    buckets: int = 0,
) -> list[np.ndarray]:
    """The example rows of each of this rank's batches (see `iter_batches`)."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(encoded["n"]) if shuffle else np.arange(encoded["n"])
    per_rank = len(order) // world_size if world_size > 1 else len(order)
    shard = order[rank::world_size][:per_rank]
    batches = [shard[start : start + batch_size] for start in range(0, len(shard), batch_size)]
    if shuffle and buckets > 1 and "length" in encoded:
        batches = bucketed_order(shard, encoded["length"], batch_size, buckets, rng)
    return batches


def bucketed_order(
    shard: np.ndarray, length: np.ndarray, batch_size: int, buckets: int, rng: np.random.Generator
) -> list[np.ndarray]:
    """Length-bucketed batches of the shuffled rows `shard`, in a shuffled order.

    Each run of `buckets * batch_size` rows is sorted by history length and cut into
    batches, so a batch holds histories of similar length (less padding), while which
    rows meet in a run still changes every epoch. The batch count is unchanged.
    """
    batches: list[np.ndarray] = []
    chunk = buckets * batch_size
    for start in range(0, len(shard), chunk):
        rows = shard[start : start + chunk]
        rows = rows[np.argsort(length[rows], kind="stable")]
        batches += [rows[i : i + batch_size] for i in range(0, len(rows), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


def padding_share(length: np.ndarray, batches: Sequence[np.ndarray]) -> float:
    """The share of history slots that are padding when each batch is cut to its longest history."""
    used = sum(int(length[b].sum()) for b in batches)
    slots = sum(int(length[b].max(initial=0)) * len(b) for b in batches)
    return 1.0 - used / slots if slots else 0.0
