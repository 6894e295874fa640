"""Axis 1, preference-based recommendation (Mender Sec. 3.5, Eq. 2), and the shared pieces.

For each row (u, t) of sequences.parquet, the preference is

    p_u^(t) = argmax_{p in P_u^(t-1)} cos(phi(p), phi(i_t))

P_u^(t-1) is written from the items at positions <= t-1 only, so the chosen statement
cannot reveal i_t. A row whose key (u, t-1) has no preferences is skipped (position 1
is never a target). Rows keep the split of sequences.parquet (leave-last-out).
Embeddings are rows of unit length, so a dot product is the cosine.
"""

from __future__ import annotations

import logging

import numpy as np
import pyarrow as pa

from steerrec.benchmark.axes import EXAMPLES, NO_PREFERENCE
from steerrec.benchmark.matching import argmax_per_group, pair_scores
from steerrec.benchmark.pool import PreferencePool
from steerrec.data.schema import SPLITS

logger = logging.getLogger(__name__)


def gather(pool: PreferencePool, users: list[str], ts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """P_u^(t) for every (users[j], ts[j]) as (flat indices into pool.texts, offsets [n + 1])."""
    parts = [pool.ids(u, t) for u, t in zip(users, ts.tolist())]
    lengths = np.fromiter((len(p) for p in parts), dtype=np.int64, count=len(parts))
    offsets = np.r_[0, np.cumsum(lengths)].astype(np.int64)
    flat = np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, dtype=np.int64)
    return flat, offsets


def closest_in_segments(
    flat: np.ndarray, offsets: np.ndarray, pref_emb: np.ndarray, query_emb: np.ndarray, query_idx: np.ndarray
) -> np.ndarray:
    """Row j's statement (an index into pref_emb) closest to query_emb[query_idx[j]] among
    flat[offsets[j]:offsets[j+1]] (the first on ties); -1 where that set is empty."""
    lengths = np.diff(offsets)
    rows = np.repeat(np.arange(len(lengths)), lengths)  # [len(flat)]
    scores = pair_scores(pref_emb, flat, query_emb, np.asarray(query_idx)[rows])
    groups, best = argmax_per_group(rows, scores)
    chosen = np.full(len(lengths), -1, dtype=np.int64)
    chosen[groups] = flat[best]
    return chosen


def split_tables(table: pa.Table, splits: list[str] | np.ndarray) -> dict[str, pa.Table]:
    """`table` cut into SPLITS by the per-row split names (row order kept)."""
    splits = np.asarray(splits, dtype=object)
    return {name: table.filter(pa.array(splits == name)) for name in SPLITS}


def recommendation_examples(
    sequences: pa.Table, pool: PreferencePool, pref_emb: np.ndarray, item_emb: np.ndarray, item_row: dict[str, int]
) -> dict[str, pa.Table]:
    """Axis 1 rows (axes.EXAMPLES) per split, from sequences.parquet rows."""
    users = sequences.column("user_id").to_pylist()
    ts = sequences.column("t").to_numpy().astype(np.int64)
    targets = np.array([item_row[i] for i in sequences.column("target").to_pylist()], dtype=np.int64)
    flat, offsets = gather(pool, users, ts - 1)
    chosen = closest_in_segments(flat, offsets, pref_emb, item_emb, targets)
    keep = chosen >= 0
    logger.info("recommendation: %d of %d rows have preferences at t-1", int(keep.sum()), len(keep))
    kept = sequences.filter(pa.array(keep))
    table = pa.Table.from_arrays(
        [
            kept.column("user_id"),
            kept.column("t"),
            kept.column("history"),
            pa.array([pool.texts[i] for i in chosen[keep]], pa.string()),
            kept.column("target"),
        ],
        schema=EXAMPLES,
    )
    return split_tables(table, kept.column("split").to_pylist())


def history_only_examples(sequences: pa.Table) -> dict[str, pa.Table]:
    """Axis 1 rows (axes.EXAMPLES) per split without preferences: every sequences.parquet
    row, its `preference` NO_PREFERENCE (for data with no reviews to write them from)."""
    table = pa.Table.from_arrays(
        [
            sequences.column("user_id"),
            sequences.column("t"),
            sequences.column("history"),
            pa.array([NO_PREFERENCE] * sequences.num_rows, pa.string()),
            sequences.column("target"),
        ],
        schema=EXAMPLES,
    )
    return split_tables(table, sequences.column("split").to_pylist())
