"""Prediction examples from time-ordered interactions, with a leave-last-out split.

For a user with n interactions there is one row per target position t = 2..n
(1-based; position 1 has no history): `history` holds the most recent <= max_history
items before t, oldest first. The last position is the test row, the second to last
the valid row, positions 2..n-2 are train rows.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from steerrec.data.schema import SEQUENCES, SPLITS


def user_starts(users: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Row indices where a new user begins (rows grouped by user), plus the length at the end."""
    if isinstance(users, pa.ChunkedArray):
        users = users.combine_chunks()
    n = len(users)
    if n == 0:
        return np.zeros(1, dtype=np.int64)
    changed = pc.not_equal(users.slice(1), users.slice(0, n - 1))
    starts = np.flatnonzero(np.asarray(changed.to_numpy(zero_copy_only=False), dtype=bool)) + 1
    return np.r_[0, starts, n].astype(np.int64)


def build_sequences(interactions: pa.Table, max_history: int = 20) -> pa.Table:
    """schema.SEQUENCES rows for `interactions` (user_id, item_id, timestamp), which must
    be sorted by user then time (as interactions.parquet is)."""
    pieces = list(iter_sequences(interactions, max_history))
    return pa.concat_tables(pieces) if pieces else SEQUENCES.empty_table()


def iter_sequences(interactions: pa.Table, max_history: int = 20, rows: int = 50_000) -> Iterator[pa.Table]:
    """`build_sequences` in pieces of at most `rows` rows, so that a user with a very long
    sequence never needs all of its histories in memory at once (the per-row arrays are
    built piece by piece too: only a row mask and the target row numbers span the table)."""
    if max_history < 1:
        raise ValueError(f"max_history must be >= 1, got {max_history}")
    starts = user_starts(interactions.column("user_id"))
    is_start = np.zeros(interactions.num_rows, dtype=bool)
    is_start[starts[:-1]] = True
    _check_sorted(interactions, len(starts) - 1, is_start)
    target_rows = np.flatnonzero(~is_start)  # every row but a user's first
    del is_start
    users = interactions.column("user_id").combine_chunks()
    items = interactions.column("item_id").combine_chunks()
    split_names = pa.array(SPLITS, pa.string())
    for begin in range(0, len(target_rows), rows):
        targets = target_rows[begin : begin + rows]
        group = np.searchsorted(starts, targets, side="right") - 1
        group_start = starts[group]
        t = targets - group_start + 1  # 1-based position in the user's sequence
        last = starts[group + 1] - group_start
        split = np.where(t == last, SPLITS.index("test"), np.where(t == last - 1, SPLITS.index("valid"), 0))
        yield pa.Table.from_arrays(
            [
                users.take(pa.array(targets)),
                pa.array(t, pa.int32()),
                _histories(items, np.maximum(group_start, targets - max_history), targets),
                items.take(pa.array(targets)),
                split_names.take(pa.array(split)),
            ],
            schema=SEQUENCES,
        )


def _histories(items: pa.Array, first: np.ndarray, targets: np.ndarray) -> pa.ListArray:
    """For each j, the list items[first[j]:targets[j]]."""
    hist_len = targets - first
    offsets = np.r_[0, np.cumsum(hist_len)].astype(np.int64)
    # indices of every history item, row after row: first[j], first[j]+1, ..., targets[j]-1
    within = np.arange(offsets[-1], dtype=np.int64) - np.repeat(offsets[:-1], hist_len)
    history_rows = np.repeat(first, hist_len) + within
    return pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), items.take(pa.array(history_rows)))


def _check_sorted(interactions: pa.Table, n_groups: int, is_start: np.ndarray) -> None:
    """Raise unless rows are grouped by user and time-ordered within each user."""
    if interactions.num_rows and n_groups != pc.count_distinct(interactions.column("user_id")).as_py():
        raise ValueError("build_sequences: interactions are not grouped by user (sort by user, then time)")
    timestamps = interactions.column("timestamp").to_numpy()
    backwards = (np.diff(timestamps) < 0) & ~is_start[1:]
    if backwards.any():
        row = int(np.flatnonzero(backwards)[0]) + 1
        raise ValueError(f"build_sequences: row {row} goes back in time within its user (sort by user, then time)")


def user_chunks(interactions: pa.Table, rows: int = 50_000) -> Iterator[pa.Table]:
    """Slices of `interactions` of about `rows` rows that never split a user."""
    for begin, end in chunk_bounds(user_starts(interactions.column("user_id")), rows):
        yield interactions.slice(begin, end - begin)


def chunk_bounds(starts: np.ndarray, rows: int) -> Iterator[tuple[int, int]]:
    """(begin, end) row ranges of about `rows` rows that never split a user, from
    `user_starts`-style group starts (the row count last)."""
    begin, total = 0, int(starts[-1])
    while begin < total:
        # the first user boundary at or after begin + rows (or the end)
        end = int(starts[min(np.searchsorted(starts, begin + rows), len(starts) - 1)])
        yield begin, end
        begin = end
