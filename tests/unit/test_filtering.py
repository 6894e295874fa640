"""Duplicates, implicit ratings and k-core against hand-worked values and a plain pandas loop."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from steerrec.data.filtering import codes, compact, encode, first_of_duplicates, implicit_ratings, kcore


def test_codes_follow_string_order():
    assert codes(pa.chunked_array([["b", "a"], ["c", "a"]])).tolist() == [1, 0, 2, 0]


def test_encode_dictionary_chunks_with_their_own_dictionaries():
    # as Parquet row groups read with read_dictionary: each chunk has its own dictionary
    column = pa.chunked_array([pa.array(["d", "b", "d"]).dictionary_encode(), pa.array(["a", "b"]).dictionary_encode()])
    got, values = encode(column)
    assert values.to_pylist() == ["a", "b", "d"]
    assert got.tolist() == [2, 1, 2, 0, 1]
    assert encode(column.cast(pa.string()))[0].tolist() == got.tolist()
    kept, kept_values = compact(got[[0, 3]], values)
    assert kept.tolist() == [1, 0] and kept_values.to_pylist() == ["a", "d"]


def test_duplicates_keep_the_first_in_source_order():
    users = np.array([0, 0, 0, 1, 0])
    items = np.array([5, 5, 5, 5, 6])
    stamps = np.array([10, 11, 10, 10, 10])
    seq = np.arange(5)
    # rows 0 and 2 repeat (user 0, item 5, t 10): row 2 goes; same item at another time stays
    assert first_of_duplicates(users, items, stamps, seq).tolist() == [True, True, False, True, True]
    # the first by source order wins even when rows arrive out of seq order
    assert first_of_duplicates(users[::-1], items[::-1], stamps[::-1], seq[::-1]).tolist() == [
        True,
        True,
        False,
        True,
        True,
    ]


@pytest.mark.parametrize(
    "values, expected",
    [
        ([1, 2, 3, 4, 5], [1, 2, 3, 4, 5]),  # p = .1 .3 .5 .7 .9
        ([7, 7, 7], [3, 3, 3]),  # all tie: p = .5
        ([4], [3]),
        ([1, 1, 2, 10], [2, 2, 4, 5]),  # p = 1/4, 1/4, 2.5/4, 3.5/4
        (list(range(1, 11)), [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]),  # top 20% -> 5
    ],
)
def test_implicit_ratings_hand_worked(values, expected):
    items = np.zeros(len(values), dtype=np.int64)
    assert implicit_ratings(items, np.array(values, dtype=float)).tolist() == expected


def test_implicit_ratings_are_per_item_and_keep_row_order():
    items = np.array([1, 0, 1, 0, 1])
    values = np.array([30.0, 2.0, 10.0, 1.0, 20.0])
    # item 1: 10, 20, 30 -> p 1/6, 1/2, 5/6 -> 1, 3, 5; item 0: 1, 2 -> p 1/4, 3/4 -> 2, 4
    assert implicit_ratings(items, values).tolist() == [5, 4, 1, 2, 3]


def _pandas_kcore(frame: pd.DataFrame, k: int) -> pd.DataFrame:
    while True:
        users = frame.groupby("user")["item"].transform("size")
        items = frame.groupby("item")["user"].transform("size")
        kept = frame[(users >= k) & (items >= k)]
        if len(kept) == len(frame):
            return kept
        frame = kept


@pytest.mark.parametrize("k", [2, 3, 5])
def test_kcore_matches_a_pandas_loop(k):
    rng = np.random.default_rng(k)
    users = rng.zipf(1.6, 3000) % 400
    items = rng.zipf(1.4, 3000) % 150
    mask, rounds = kcore(users, items, k, k)
    expected = _pandas_kcore(pd.DataFrame({"user": users, "item": items}), k)
    assert np.flatnonzero(mask).tolist() == expected.index.tolist()
    assert rounds >= 2
    kept_users, kept_items = users[mask], items[mask]
    assert np.bincount(kept_users)[np.unique(kept_users)].min() >= k
    assert np.bincount(kept_items)[np.unique(kept_items)].min() >= k


@pytest.mark.parametrize("k", [0, 1])
def test_kcore_of_zero_or_one_keeps_everything(k):
    mask, _ = kcore(np.array([0, 1, 2]), np.array([0, 0, 1]), k, k)
    assert mask.all()


def test_kcore_rejects_negative_k():
    with pytest.raises(ValueError, match="kcore"):
        kcore(np.array([0]), np.array([0]), -1, 5)
