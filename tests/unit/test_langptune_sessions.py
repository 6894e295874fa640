"""LangPTune sessions: 4 distinct history items + 1 upcoming, with the user's reviews."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from steerrec.data import schema
from steerrec.data.sequences import build_sequences
from steerrec.langptune.sessions import (
    INSTRUCTION,
    Session,
    SessionConfig,
    attach_reviews,
    load_sessions,
    profile_messages,
    sessions_from_sequences,
)

# u1 repeats item a at position 5; u2 has exactly 5 items
SEQ = {"u1": ["a", "b", "c", "d", "e", "a", "f", "g"], "u2": ["p", "q", "r", "s", "t"]}


def _interactions() -> pa.Table:
    rows = [
        {
            "user_id": u,
            "item_id": item,
            "timestamp": 100 + pos,
            "rating": float(1 + pos % 5),
            "review_text": f"{u} on {item}",
            "review_summary": None,
        }
        for u, items in SEQ.items()
        for pos, item in enumerate(items)
    ]
    return pa.Table.from_pylist(rows, schema=schema.INTERACTIONS)


def test_sessions_are_distinct_windows_before_each_target():
    seq = build_sequences(_interactions(), max_history=20)
    sessions = sessions_from_sequences(seq, SessionConfig())
    got = {(s.user_id, s.t): (s.history, s.target, s.split) for s in sessions}
    # u1: t=5 (a,b,c,d -> e) train; t=6 (b,c,d,e -> a) train; t=7 (c,d,e,a -> f) valid;
    # t=8 (d,e,a,f -> g) test; u2: t=5 (p,q,r,s -> t) test
    assert got == {
        ("u1", 5): (("a", "b", "c", "d"), "e", "train"),
        ("u1", 6): (("b", "c", "d", "e"), "a", "train"),
        ("u1", 7): (("c", "d", "e", "a"), "f", "valid"),
        ("u1", 8): (("d", "e", "a", "f"), "g", "test"),
        ("u2", 5): (("p", "q", "r", "s"), "t", "test"),
    }
    for s in sessions:
        assert len(set(s.history) | {s.target}) == 5


def test_a_window_with_a_repeat_is_dropped():
    rows = [{"user_id": "u", "t": 6, "history": ["x", "a", "b", "c", "d"], "target": "a", "split": "train"}]
    seq = pa.Table.from_pylist(rows, schema=schema.SEQUENCES)
    assert sessions_from_sequences(seq, SessionConfig()) == []  # a, b, c, d -> a repeats a
    rows[0]["target"] = "x"  # x is outside the 4-item window: kept
    assert len(sessions_from_sequences(pa.Table.from_pylist(rows, schema=schema.SEQUENCES), SessionConfig())) == 1


def test_split_filter_and_latest_per_user():
    seq = build_sequences(_interactions())
    train = sessions_from_sequences(seq, SessionConfig(splits=("train",), max_per_user=1))
    assert [(s.user_id, s.t) for s in train] == [("u1", 6)]


def test_reviews_are_read_by_position():
    seq = build_sequences(_interactions())
    (s,) = attach_reviews(sessions_from_sequences(seq, SessionConfig(splits=("valid",))), _interactions())
    assert s.history == ("c", "d", "e", "a")
    assert s.reviews == ("u1 on c", "u1 on d", "u1 on e", "u1 on a")
    assert s.ratings == (3.0, 4.0, 5.0, 1.0)  # positions 3..6 -> 1 + (pos0 % 5)


def test_mismatched_interactions_name_the_user():
    bad = Session("u2", 5, "test", ("p", "q", "zz", "s"), "t")
    with pytest.raises(ValueError, match="u2.*sorted by user"):
        attach_reviews([bad], _interactions())


def test_load_sessions_and_prompt(tmp_path):
    inter = _interactions()
    pq.write_table(inter, tmp_path / schema.INTERACTIONS_FILE)
    pq.write_table(build_sequences(inter), tmp_path / schema.SEQUENCES_FILE)
    empty = {f.name: None for f in schema.ITEMS}
    items = pa.Table.from_pylist([empty | {"item_id": i, "title": f"Item {i}"} for i in "abcdefgpqrst"], schema.ITEMS)
    pq.write_table(items, tmp_path / schema.ITEMS_FILE)
    sessions, table = load_sessions(str(tmp_path), SessionConfig(splits=("test",), max_review_words=2))
    assert table.num_rows == 12 and len(sessions) == 2
    s = next(x for x in sessions if x.user_id == "u2")
    msgs = profile_messages(s, {"p": "Title: Pears"}, SessionConfig(max_review_words=2))
    assert msgs[0] == {"role": "system", "content": INSTRUCTION}
    blocks = msgs[1]["content"].split("\n\n")
    assert blocks[0] == "Title: Pears\nReview from the user: (rating: 1.0) u2 on [...]"
    assert blocks[1].startswith("q\nReview from the user: (rating: 2.0)")  # no text: the id
    assert len(blocks) == 4
