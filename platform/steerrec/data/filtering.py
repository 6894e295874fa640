"""Key-only filtering steps of the ingest: duplicates, implicit ratings, k-core.

Every function works on numpy arrays of integer codes (one per interaction, in source
order), so that the ingest can run them on the key columns alone without the review text.
"""

from __future__ import annotations

import logging

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

logger = logging.getLogger(__name__)


def codes(column: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Dense int64 codes 0..n_distinct-1 for a string column, in the strings' sorted order
    (so sorting by code sorts by the string)."""
    return encode(column)[0].astype(np.int64)


def encode(column: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, pa.Array]:
    """(codes, values): the int32 code of each entry and the sorted distinct strings, so
    that ``values[codes]`` is the column and sorting by code sorts by the string.

    The column may be dictionary-encoded, each chunk with its own dictionary (as Parquet
    row groups read with ``read_dictionary``), so the strings are never materialized.
    """
    if not isinstance(column, pa.ChunkedArray):
        column = pa.chunked_array([column])
    if not pa.types.is_dictionary(column.type):
        column = pc.dictionary_encode(column)
    if column.num_chunks == 0:
        return np.zeros(0, dtype=np.int32), pa.array([], column.type.value_type)
    column = column.unify_dictionaries()
    dictionary = column.chunk(0).dictionary
    order = np.asarray(pc.array_sort_indices(dictionary))
    rank = np.empty(len(order), dtype=np.int32)
    rank[order] = np.arange(len(order), dtype=np.int32)
    indices = np.concatenate([np.asarray(chunk.indices) for chunk in column.chunks])
    return rank[indices], dictionary.take(pa.array(order))


def compact(codes: np.ndarray, values: pa.Array) -> tuple[np.ndarray, pa.Array]:
    """`encode`'s (codes, values) without the values no code uses, order kept."""
    used = np.zeros(len(values), dtype=bool)
    used[codes] = True
    new_code = np.cumsum(used, dtype=np.int64).astype(np.int32) - 1
    return new_code[codes], values.filter(pa.array(used))


def first_of_duplicates(users: np.ndarray, items: np.ndarray, timestamps: np.ndarray, seq: np.ndarray) -> np.ndarray:
    """Mask of rows to keep: among rows with the same user, item and timestamp, the first
    in source order (smallest `seq`) is kept and the others dropped."""
    n = len(users)
    if n == 0:
        return np.zeros(0, dtype=bool)
    order = np.lexsort((seq, timestamps, items, users))
    u, i, t = users[order], items[order], timestamps[order]
    starts = np.ones(n, dtype=bool)
    starts[1:] = (u[1:] != u[:-1]) | (i[1:] != i[:-1]) | (t[1:] != t[:-1])
    keep = np.zeros(n, dtype=bool)
    keep[order[starts]] = True
    return keep


def implicit_ratings(items: np.ndarray, implicit: np.ndarray) -> np.ndarray:
    """1..5 ratings from an implicit signal (play count, hours) by per-item percentile.

    For an interaction with value x on an item with n interactions, the percentile is
    p = (#values < x + 0.5 * #values == x) / n (mid-rank, so tied values share one
    percentile and one rating), and the rating is 1 + floor(5 p), capped at 5: the top
    20% of an item's values get 5, the bottom 20% get 1. An item with one interaction,
    or whose values all tie, gets 3 everywhere. Hand-worked: values 1, 2, 3, 4, 5 on one
    item give p = .1, .3, .5, .7, .9 and ratings 1, 2, 3, 4, 5.
    """
    n = len(items)
    if n == 0:
        return np.zeros(0, dtype=np.float64)
    values = np.asarray(implicit, dtype=np.float64)
    order = np.lexsort((values, items))
    it, val = items[order], values[order]
    # group starts of items, and of (item, value) tie runs, in the sorted order
    item_start = np.r_[True, it[1:] != it[:-1]]
    tie_start = item_start | np.r_[True, val[1:] != val[:-1]]
    idx = np.arange(n)
    first_of_item = np.maximum.accumulate(np.where(item_start, idx, 0))
    item_size = np.bincount(np.cumsum(item_start) - 1)[np.cumsum(item_start) - 1]
    tie_id = np.cumsum(tie_start) - 1
    tie_first = np.flatnonzero(tie_start)[tie_id]
    tie_size = np.bincount(tie_id)[tie_id]
    below = tie_first - first_of_item
    percentile = (below + 0.5 * tie_size) / item_size
    rating = np.minimum(1 + np.floor(5 * percentile), 5)
    out = np.empty(n, dtype=np.float64)
    out[order] = rating
    return out


def kcore(users: np.ndarray, items: np.ndarray, k_user: int = 5, k_item: int = 5) -> tuple[np.ndarray, int]:
    """Mask of interactions in the k-core: repeatedly drop users with fewer than `k_user`
    and items with fewer than `k_item` interactions until nothing changes.

    A k of 0 or 1 disables that side. Returns (mask, number of rounds).
    """
    if k_user < 0 or k_item < 0:
        raise ValueError(f"kcore must be >= 0, got users={k_user} items={k_item}")
    keep = np.ones(len(users), dtype=bool)
    n_users = int(users.max()) + 1 if len(users) else 0
    n_items = int(items.max()) + 1 if len(items) else 0
    rounds = 0
    while True:
        rounds += 1
        user_count = np.bincount(users[keep], minlength=n_users)
        item_count = np.bincount(items[keep], minlength=n_items)
        bad = (user_count[users] < k_user) | (item_count[items] < k_item)
        drop = keep & bad
        if not drop.any():
            return keep, rounds
        keep &= ~drop
        logger.debug("k-core round %d dropped %d interactions", rounds, int(drop.sum()))
