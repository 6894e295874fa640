"""truth_hits: the share of profiles naming a true like / dislike, checked on hand-made
profiles against a hand-made truth (the definition is steerrec.langptune.truth_hits')."""

from __future__ import annotations

import math

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from steerrec.data import schema
from steerrec.langptune.sessions import Session
from steerrec.langptune.truth_hits import load_truth, names, truth_hits, visible_truth


def _session(user: str, t: int, reviews: tuple[str, ...]) -> Session:
    return Session(user, t, "test", ("a", "b", "c", "d"), "e", (4.0,) * 4, reviews)


# A: reviews like matte, dislike gel; B: like wired only
A = _session("A", 6, ("I love the matte finish.", "The gel texture was awful.", "", "Fine."))
B = _session("B", 7, ("Great wired connection.", "", "", ""))
TRUTH = {
    ("A", 5): [("skincare.finish=matte", "like"), ("skincare.texture=gel", "dislike")],
    ("B", 6): [("headphones.connection=wired", "like"), ("headphones.form=in-ear", "dislike")],
    ("A", 6): [("skincare.scent=rose-scented", "like")],  # the target's own row: never used
}


def test_docstring_example_by_hand():
    hits = truth_hits(["Loves matte finishes", "Prefers wireless"], [A, B], TRUTH)
    assert hits["like_share"] == 0.5 and hits["like_sessions"] == 2
    assert hits["dislike_share"] == 0.0 and hits["dislike_sessions"] == 1  # B's in-ear is not in a review


def test_both_named_and_the_row_before_the_target():
    hits = truth_hits(["Matte, never GEL; wired is fine", "wired headphones, rose-scented"], [A, B], TRUTH)
    assert hits == {"like_share": 1.0, "dislike_share": 1.0, "like_sessions": 2.0, "dislike_sessions": 1.0}
    # truth (A, 6) holds rose-scented, but A's session (t=6) reads the row of t-1 = 5
    assert visible_truth(A, TRUTH) == {"like": ["matte"], "dislike": ["gel"]}


def test_a_session_without_visible_truth_leaves_the_denominator():
    hits = truth_hits(["anything"], [_session("C", 9, ("", "", "", ""))], TRUTH)
    assert math.isnan(hits["like_share"]) and math.isnan(hits["dislike_share"])
    assert hits["like_sessions"] == 0 and hits["dislike_sessions"] == 0
    with pytest.raises(ValueError, match="2 profiles for 1 sessions"):
        truth_hits(["x", "y"], [A], TRUTH)


@pytest.mark.parametrize(
    ("text", "phrase", "found"),
    [
        ("Enjoys Sci Fi themes", "sci-fi", True),
        ("fragrance-free   products", "fragrance free", True),
        ("an angel", "gel", False),
        ("wireless", "wired", False),
        ("over-ear.", "over-ear", True),
    ],
)
def test_names_matches_whole_normalized_phrases(text, phrase, found):
    assert names(text, phrase) is found


def test_load_truth_reads_the_world_file(tmp_path):
    assert load_truth(str(tmp_path)) is None  # no truth.parquet: not the world
    row = {"user_id": "A", "t": 5, "preferences": ["Prefer matte", "Avoid gel"]}
    row |= {"attributes": ["skincare.finish=matte", "skincare.texture=gel"], "sentiments": ["like", "dislike"]}
    pq.write_table(pa.Table.from_pylist([row], schema.TRUTH), tmp_path / schema.TRUTH_FILE)
    assert load_truth(str(tmp_path)) == {("A", 5): TRUTH[("A", 5)]}
