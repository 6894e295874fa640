"""The benchmark axes' pure pieces on hand-made embeddings (no model, no Ray)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from steerrec.benchmark.axes import (
    AXES,
    COARSE,
    CONSOLIDATION,
    FINE,
    SENTIMENT,
    axis_file,
    axis_schema,
)
from steerrec.benchmark.consolidation import consolidation_examples
from steerrec.benchmark.pool import PreferencePool
from steerrec.benchmark.recommendation import (
    closest_in_segments,
    recommendation_examples,
)
from steerrec.benchmark.sentiment import (
    SentimentConfig,
    first_word,
    invert,
    is_negative,
    match_pairs,
    positions,
    sentiment_examples,
    split_of,
)
from steerrec.benchmark.steering import (
    assign_greedy,
    extreme_items,
    other_users,
    steering_examples,
)
from steerrec.data.schema import SEQUENCES
from steerrec.sentiment import (
    ClassifierConfig,
    is_negative_label,
    negative_reviews,
    rating_negative,
)


def unit(*rows: list[float]) -> np.ndarray:
    x = np.array(rows, dtype=np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def pool_of(rows: list[tuple[str, int, list[str]]]) -> PreferencePool:
    return PreferencePool.from_table(
        pa.table(
            {
                "user_id": [u for u, _, _ in rows],
                "t": pa.array([t for _, t, _ in rows], pa.int32()),
                "preferences": [p for _, _, p in rows],
            }
        )
    )


def sequences(rows: list[tuple[str, int, list[str], str, str]]) -> pa.Table:
    names = ["user_id", "t", "history", "target", "split"]
    return pa.table({n: [r[i] for r in rows] for i, n in enumerate(names)}, schema=SEQUENCES)


# ---- shapes and the pool ---------------------------------------------------------------


def test_axis_names_and_schemas():
    assert AXES == ("recommendation", "fine", "coarse", "sentiment", "consolidation")
    assert "preferences" in axis_schema(CONSOLIDATION).names and "preference" not in axis_schema(CONSOLIDATION).names
    assert axis_schema(SENTIMENT).names[-2:] == ["polarity", "pair_id"]
    assert axis_file(FINE, "test") == "axes/fine/test.parquet"
    with pytest.raises(ValueError, match="unknown axis 'steer'"):
        axis_schema("steer")


def test_pool_dedupes_statements_and_rejects_repeated_keys():
    pool = pool_of([("b", 1, ["x", "y"]), ("a", 2, ["y", "z"]), ("a", 1, None)])
    assert pool.texts == ["y", "z", "x"]  # first seen after sorting keys: (a,1) (a,2) (b,1)
    assert pool.statements("a", 2) == ["y", "z"] and pool.statements("a", 1) == []
    assert pool.statements("b", 1) == ["x", "y"] and pool.statements("c", 1) == []
    with pytest.raises(ValueError, match=r"\(user_id='a', t=1\) appears twice"):
        pool_of([("a", 1, ["x"]), ("a", 1, ["y"])])


# ---- axis 1 and 5 ------------------------------------------------------------------------


def test_closest_in_segments_takes_argmax_first_on_ties_and_minus_one_when_empty():
    prefs = unit([1, 0], [0, 1], [1, 1], [1, 0])  # statement 3 ties with statement 0
    items = unit([0.9, 0.1], [0, 1])
    flat = np.array([1, 2, 0, 3, 0, 1])
    offsets = np.array([0, 3, 3, 6])  # row 1 has no statements
    chosen = closest_in_segments(flat, offsets, prefs, items, np.array([0, 0, 1]))
    assert chosen.tolist() == [0, -1, 1]
    chosen = closest_in_segments(np.array([3, 0]), np.array([0, 2]), prefs, items, np.array([0]))
    assert chosen.tolist() == [3]  # equal scores: the first listed wins


def test_recommendation_uses_only_preferences_from_before_t():
    # P_u^(2) holds a perfect match for the target at t=3, but only P_u^(2) may be used for t=3,
    # and for t=2 only P_u^(1) (statements "far" and "near").
    pool = pool_of([("u", 1, ["far", "near"]), ("u", 2, ["exact"])])
    emb = {"far": [0, 1], "near": [1, 0.5], "exact": [1, 0]}
    pref_emb = unit(*[emb[t] for t in pool.texts])
    item_emb = unit([1, 0])
    seq = sequences([("u", 2, ["i"], "i", "valid"), ("u", 3, ["i", "i"], "i", "test"), ("u", 4, ["i"], "i", "train")])
    out = recommendation_examples(seq, pool, pref_emb, item_emb, {"i": 0})
    assert out["valid"].column("preference").to_pylist() == ["near"]
    assert out["test"].column("preference").to_pylist() == ["exact"]
    assert out["train"].num_rows == 0  # no P_u^(3): skipped
    assert out["test"].schema == axis_schema("recommendation")


def test_consolidation_gives_all_statements_of_t_minus_one():
    pool = pool_of([("u", 1, ["a", "b", "c"]), ("u", 2, ["d"])])
    seq = sequences([("u", 2, ["i"], "j", "valid"), ("u", 3, ["i", "j"], "k", "test")])
    out = consolidation_examples(seq, pool)
    assert out["valid"].column("preferences").to_pylist() == [["a", "b", "c"]]
    assert out["test"].column("preferences").to_pylist() == [["d"]]
    assert out["train"].num_rows == 0


# ---- axes 2 and 3 ------------------------------------------------------------------------


def test_extreme_items_most_and_least_similar_never_self():
    items = unit([1, 0], [0.9, 0.1], [0, 1], [-1, 0.1])
    assert extreme_items(items, np.array([0, 2]), most_similar=True).tolist() == [1, 1]
    assert extreme_items(items, np.array([0, 1]), most_similar=False).tolist() == [3, 3]


def test_assign_greedy_never_reuses_a_pair_across_splits():
    candidates = np.array([[5, 6, 7], [5, 6, 7], [5, 6, 7], [5, 6, 7], [5, 6, -1], [5, -1, -1]])
    items = np.array([1, 1, 1, 1, 2, 1])
    splits = ["train", "test", "valid", "test", "train", "valid"]
    chosen = assign_greedy(candidates, items, splits)
    # test chooses first (5 for item 1, shared by both test rows), valid takes the next, then train
    assert chosen.tolist() == [7, 5, 6, 5, 5, -1]
    pairs = {}
    for c, i, s in zip(chosen, items, splits):
        if c >= 0:
            assert pairs.setdefault((c, i), s) == s


def test_other_users_same_target_other_history_deterministic():
    users = ["a", "a", "b", "c", "d"]
    ts = np.array([2, 3, 2, 4, 2])
    hist = [["x"], ["x", "y"], ["x"], ["z"], ["q"]]
    targets = np.array([7, 8, 7, 7, 9])
    out = other_users(users, ts, hist, targets, seed=0)
    assert out[0] == 3  # b has the same history as a: only c qualifies
    assert out[2] in (3,) and out[3] in (0, 2)
    assert out[1] == -1 and out[4] == -1  # nobody else has 8 or 9 as a target
    assert out.tolist() == other_users(users, ts, hist, targets, seed=0).tolist()


def test_steering_rows_target_the_retrieved_item_with_a_matched_preference():
    item_ids = ["i0", "i1", "i2"]
    item_emb = unit([1, 0], [0.8, 0.2], [-1, 0.05])
    pool = pool_of([("a", 1, ["like i1"]), ("b", 1, ["like i2", "like i0"])])
    pref_emb = unit(*[{"like i1": [0.8, 0.2], "like i2": [-1, 0.05], "like i0": [1, 0]}[t] for t in pool.texts])
    seq = sequences([("a", 2, ["i2"], "i0", "test"), ("b", 2, ["i1"], "i0", "train")])
    row = {i: k for k, i in enumerate(item_ids)}
    fine, stats = steering_examples(FINE, seq, pool, pref_emb, item_emb, item_ids, row, seed=0, candidates=2)
    test = fine["test"].to_pylist()[0]
    assert (test["user_id"], test["history"], test["target"], test["preference"]) == ("b", ["i1"], "i1", "like i1")
    train = fine["train"].to_pylist()[0]  # same pair (like i1, i1) taken by test: the next best
    assert (train["user_id"], train["target"], train["preference"]) == ("a", "i1", "like i0")
    coarse, _ = steering_examples(COARSE, seq, pool, pref_emb, item_emb, item_ids, row, seed=0, candidates=2)
    assert coarse["test"].to_pylist()[0]["user_id"] == "a"  # coarse keeps the user's own history
    assert coarse["test"].column("target").to_pylist() == ["i2"]
    assert coarse["test"].column("preference").to_pylist() == ["like i2"]
    assert stats["rows"] == 2 and stats["mean_target_similarity"] > 0.9


# ---- axis 4 ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, negative",
    [
        ("Avoid strong scents", True),
        ("avoid: strong scents", True),
        ("EXCLUDE wired headphones", True),
        ("No added sugar", True),
        ("Nothing loud", False),
        ("Not too sweet", False),
        ("Find quiet fans", False),
        ("Look for no-slip soles", False),
        ("", False),
    ],
)
def test_negation_is_the_whole_first_word(text, negative):
    assert is_negative(text) is negative


def test_invert_replaces_the_negation_word():
    assert invert("Avoid strong scents") == "Find strong scents"
    assert invert("No, sugary cereals") == "Find sugary cereals"
    assert invert("Exclude wired headphones", verb="Search for") == "Search for wired headphones"
    assert first_word("  Exclude:   x") == "Exclude"
    assert is_negative("Skip spicy food", words=("skip",))
    with pytest.raises(ValueError, match="not a negative statement"):
        invert("Find quiet fans")


def test_match_pairs_one_review_or_the_closest_and_only_up_to_t():
    pool = pool_of(
        [
            ("u", 1, ["Avoid sweet", "Find salty", "No bitter"]),
            ("u", 3, ["Avoid sweet", "No bitter"]),
            ("v", 2, ["No bitter"]),
        ]
    )
    pref_emb = unit(*[{"Avoid sweet": [1, 0], "Find salty": [0, 1], "No bitter": [0.1, 1]}[t] for t in pool.texts])
    # u's negative reviews at positions 1 (sweet item) and 3 (bitter item); v has none
    review_emb = unit([1, 0.1], [0, 1])
    pairs, counts = match_pairs(pool, ["u", "u"], np.array([1, 3]), ["sweet", "bitter"], review_emb, pref_emb)
    sweet, bitter = pool.texts.index("Avoid sweet"), pool.texts.index("No bitter")
    # t=1: only the review at position 1 is in the window, so both negatives go to it;
    # t=3: "No bitter" goes to the closer review; (Avoid sweet, sweet) is kept once; v: unmatched
    assert pairs == [("u", 1, sweet, "sweet"), ("u", 1, bitter, "sweet"), ("u", 3, bitter, "bitter")]
    assert counts == {"preferences": 6, "negative": 5, "positive": 1, "unmatched": 1}


def test_sentiment_rows_link_twins_and_split_by_user():
    pool = pool_of([("u", 1, ["Avoid sweet"]), ("w", 1, ["No bitter"])])
    pairs = [("u", 1, pool.texts.index("Avoid sweet"), "i1"), ("w", 1, pool.texts.index("No bitter"), "i2")]
    cfg = SentimentConfig(valid_fraction=0.0, test_fraction=0.0)
    rows = sentiment_examples(pairs, pool, cfg, seed=3)["train"].to_pylist()
    assert [(r["pair_id"], r["polarity"], r["preference"], r["target"], r["history"]) for r in rows] == [
        (0, "neg", "Avoid sweet", "i1", []),
        (0, "pos", "Find sweet", "i1", []),
        (1, "neg", "No bitter", "i2", []),
        (1, "pos", "Find bitter", "i2", []),
    ]
    splits = [split_of(f"user{i}", 0, 0.15, 0.15) for i in range(2000)]
    assert splits == [split_of(f"user{i}", 0, 0.15, 0.15) for i in range(2000)]
    assert 0.11 < splits.count("test") / 2000 < 0.19 and 0.11 < splits.count("valid") / 2000 < 0.19
    assert splits != [split_of(f"user{i}", 1, 0.15, 0.15) for i in range(2000)]


def test_positions_count_within_each_user():
    assert positions(["a", "a", "a", "b", "c", "c"]).tolist() == [1, 2, 3, 1, 1, 2]


def test_review_classifiers():
    ratings = np.array([1.0, 2.0, 3.0, np.nan, 5.0])
    assert rating_negative(ratings).tolist() == [True, True, False, False, False]
    texts = ["I hate it, awful and broken.", "", "Love it, wonderful!", None, "Terrible, do not buy."]
    vader = negative_reviews(texts, ratings, ClassifierConfig(name="vader"))
    assert vader.tolist() == [True, True, False, False, True]  # empty/None text: the rating decides
    assert is_negative_label("NEGATIVE") and is_negative_label("2 stars") and not is_negative_label("POSITIVE")
    with pytest.raises(ValueError, match="sentiment classifier must be one of"):
        ClassifierConfig(name="textblob")
