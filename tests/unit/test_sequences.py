"""Sequence rows and the leave-last-out split."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from steerrec.data.schema import SEQUENCES
from steerrec.data.sequences import build_sequences, chunk_bounds, iter_sequences, user_chunks


def _interactions(lengths: dict[str, int]) -> pa.Table:
    """Users with the given numbers of interactions; item ids name user and position."""
    users, items, stamps = [], [], []
    for user, n in sorted(lengths.items()):
        for position in range(1, n + 1):
            users.append(user)
            items.append(f"{user}@{position}")
            stamps.append(1000 + 10 * position)
    return pa.table({"user_id": users, "item_id": items, "timestamp": pa.array(stamps, pa.int64())})


def test_hand_worked_user():
    table = build_sequences(_interactions({"u": 5}), max_history=2)
    assert table.schema.equals(SEQUENCES)
    assert table.to_pylist() == [
        {"user_id": "u", "t": 2, "history": ["u@1"], "target": "u@2", "split": "train"},
        {"user_id": "u", "t": 3, "history": ["u@1", "u@2"], "target": "u@3", "split": "train"},
        {"user_id": "u", "t": 4, "history": ["u@2", "u@3"], "target": "u@4", "split": "valid"},
        {"user_id": "u", "t": 5, "history": ["u@3", "u@4"], "target": "u@5", "split": "test"},
    ]


def test_split_properties_on_many_users():
    rng = np.random.default_rng(0)
    lengths = {f"user{i:03d}": int(n) for i, n in enumerate(rng.integers(1, 40, size=200))}
    max_history = 7
    rows = build_sequences(_interactions(lengths), max_history).to_pylist()
    assert len(rows) == sum(n - 1 for n in lengths.values())
    by_user: dict[str, list[dict]] = {}
    for row in rows:
        by_user.setdefault(row["user_id"], []).append(row)
    for user, n in lengths.items():
        got = by_user.get(user, [])
        assert [r["t"] for r in got] == list(range(2, n + 1))
        splits = [r["split"] for r in got]
        assert splits.count("test") == (1 if n >= 2 else 0)
        assert splits.count("valid") == (1 if n >= 3 else 0)
        for r in got:
            positions = [int(item.split("@")[1]) for item in r["history"]]
            assert r["target"] == f"{user}@{r['t']}"
            assert r["target"] not in r["history"]
            assert len(r["history"]) == min(r["t"] - 1, max_history)
            assert positions == list(range(r["t"] - len(positions), r["t"]))  # the most recent, oldest first
            expected = "test" if r["t"] == n else "valid" if r["t"] == n - 1 else "train"
            assert r["split"] == expected


def test_unsorted_input_is_an_error():
    table = _interactions({"a": 3, "b": 3})
    with pytest.raises(ValueError, match="grouped by user"):
        build_sequences(table.take([0, 3, 1, 4, 2, 5]))
    with pytest.raises(ValueError, match="back in time"):
        build_sequences(table.take([1, 0, 2, 3, 4, 5]))


def test_pieces_equal_the_whole():
    table = _interactions({"a": 30, "b": 2, "c": 9})
    pieces = list(iter_sequences(table, max_history=4, rows=7))
    assert [p.num_rows for p in pieces] == [7, 7, 7, 7, 7, 3]  # 29 + 1 + 8 targets
    assert pa.concat_tables(pieces).equals(build_sequences(table, max_history=4))


def test_user_chunks_never_split_a_user():
    table = _interactions({"a": 4, "b": 1, "c": 6, "d": 2})
    chunks = list(user_chunks(table, rows=3))
    assert [c.num_rows for c in chunks] == [4, 7, 2]
    assert pa.concat_tables(chunks).equals(table)
    assert list(chunk_bounds(np.array([0, 4, 5, 11, 13]), 3)) == [(0, 4), (4, 11), (11, 13)]


def test_empty_table():
    table = _interactions({})
    assert build_sequences(table).num_rows == 0
