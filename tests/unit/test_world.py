"""The built-in world: determinism, sizes, the 5-core promise, and that ratings, reviews
and the truth follow the users' preferences."""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict

import numpy as np
import pyarrow.parquet as pq
import pytest

from steerrec.data import filtering, schema
from steerrec.data.readers.base import Location
from steerrec.data.world import World, WorldConfig, WorldReader, generate, summary
from steerrec.data.world.vocab import CATEGORIES

NEGATIVE = ("Avoid", "Exclude", "No")
POSITIVE = ("Look for", "Prefer", "Find", "Search for")
SMALL = WorldConfig(n_users=120, n_items=60, seed=7)


@pytest.fixture(scope="module")
def world() -> World:
    return generate(WorldConfig())


@pytest.fixture(scope="module")
def sparse() -> World:
    """Few users for many items: most items need topping up to reach five interactions."""
    return generate(WorldConfig(n_users=30, n_items=200, seed=3))


def _value(key: str) -> str:
    return key.split("=", 1)[1]


def _item_attributes(world: World) -> dict[str, set[str]]:
    out = {}
    for row in world.items.to_pylist():
        extra = json.loads(row["extra"])
        out[row["item_id"]] = {f"{extra['world_category']}.{a}={v}" for a, v in extra["attributes"].items()}
    return out


def test_same_seed_same_world_and_other_seed_other_world():
    a, b, c = generate(SMALL), generate(SMALL), generate(WorldConfig(n_users=120, n_items=60, seed=8))
    for name in ("items", "interactions", "truth", "mentions"):
        assert getattr(a, name).equals(getattr(b, name)), name
        assert not getattr(a, name).equals(getattr(c, name)), name


def test_default_sizes(world):
    assert world.items.num_rows == 400
    assert len(set(world.interactions.column("user_id").to_pylist())) == 1000
    assert 9_000 <= world.interactions.num_rows <= 11_000
    counts = Counter(json.loads(e)["world_category"] for e in world.items.column("extra").to_pylist())
    assert set(counts) == {c.name for c in CATEGORIES} and min(counts.values()) == 80


def test_tables_have_the_contracted_schemas(world):
    for table, contract in (
        (world.items, schema.ITEMS),
        (world.interactions, schema.INTERACTIONS),
        (world.truth, schema.TRUTH),
    ):
        assert table.schema.equals(contract)
        schema.validate(table, contract, "world")
    ids = world.items.column("item_id").to_pylist()
    assert ids == sorted(ids) and all(re.fullmatch(r"W\d{5}", i) for i in ids)


@pytest.mark.parametrize("name", ["world", "sparse"])
def test_five_core_keeps_every_row(name, request):
    w = request.getfixturevalue(name)
    users = w.interactions.column("user_id").to_pylist()
    items = w.interactions.column("item_id").to_pylist()
    assert min(Counter(users).values()) >= 5
    assert min(Counter(items).values()) >= 5
    assert Counter(items).keys() == set(w.items.column("item_id").to_pylist())
    assert len(set(zip(users, items))) == len(users), "a user interacts with an item twice"
    keep, _ = filtering.kcore(
        filtering.codes(w.interactions.column("user_id")), filtering.codes(w.interactions.column("item_id")), 5, 5
    )
    assert keep.all()


def test_sorted_by_user_then_strictly_increasing_time(world):
    users = np.array(world.interactions.column("user_id").to_pylist())
    ts = world.interactions.column("timestamp").to_numpy()
    assert (users[1:] >= users[:-1]).all()
    same = users[1:] == users[:-1]
    assert (np.diff(ts)[same] > 0).all()
    assert ts.min() > 1_500_000_000  # seconds, not milliseconds
    assert ts.max() < 1_800_000_000


def test_ratings_follow_preference_match(world):
    ratings = world.interactions.column("rating").to_numpy()
    assert set(np.unique(ratings)) <= {1.0, 2.0, 3.0, 4.0, 5.0}
    sentiments = world.mentions.column("sentiments").to_pylist()
    match = np.array([s.count("like") - s.count("dislike") for s in sentiments])
    liked = np.array(["like" in s and "dislike" not in s for s in sentiments])
    disliked = np.array(["dislike" in s and "like" not in s for s in sentiments])
    assert liked.sum() > 1000 and disliked.sum() > 500
    assert ratings[liked].mean() - ratings[disliked].mean() > 1.0
    assert np.corrcoef(match, ratings)[0, 1] > 0.4


def test_mentions_are_attributes_of_the_item_and_reviews_name_them(world):
    attrs = _item_attributes(world)
    mentions = world.mentions.to_pylist()
    inter = world.interactions.to_pylist()
    assert [m["item_id"] for m in mentions] == [r["item_id"] for r in inter]
    for m, row in zip(mentions, inter):
        assert len(m["attributes"]) == len(m["sentiments"])
        assert set(m["attributes"]) <= attrs[m["item_id"]]
        text = row["review_text"].lower()
        for key in m["attributes"]:
            assert _value(key).lower() in text, (key, row["review_text"])
        assert row["review_summary"] and len(row["review_summary"]) <= 60


def test_descriptions_name_every_attribute_value(world):
    attrs = _item_attributes(world)
    for row in world.items.to_pylist():
        assert row["title"] and row["brand"] and row["price"] > 0 and len(row["categories"]) == 2
        for key in attrs[row["item_id"]]:
            assert _value(key).lower() in row["description"].lower()


def test_truth_covers_every_position_with_one_to_five_statements(world):
    keys = set(zip(world.interactions.column("user_id").to_pylist(), _positions(world)))
    truth = world.truth.to_pylist()
    assert {(r["user_id"], r["t"]) for r in truth} == keys and len(truth) == len(keys)
    for r in truth:
        n = len(r["preferences"])
        assert 1 <= n <= 5 and len(r["attributes"]) == n and len(r["sentiments"]) == n
        for text, key, sentiment in zip(r["preferences"], r["attributes"], r["sentiments"]):
            assert sentiment in ("like", "dislike")
            assert text.startswith(NEGATIVE) == (sentiment == "dislike"), text
            assert text.startswith(POSITIVE if sentiment == "like" else NEGATIVE), text
            assert _value(key) in text


def test_truth_is_what_the_recent_reviews_reveal(world):
    """Recomputed here from the mentions: the latest mention of each (attribute,
    sentiment) in the window of five reviews, reaching back when the window is silent."""
    by_user: dict[str, list[list[tuple[str, str]]]] = defaultdict(list)
    for m in world.mentions.to_pylist():
        by_user[m["user_id"]].append(list(zip(m["attributes"], m["sentiments"])))
    for r in world.truth.to_pylist():
        seq, t = by_user[r["user_id"]], r["t"]
        lo = t - 5  # CONTRACTS.md: the most recent five items and their reviews
        while lo > 0 and not any(seq[max(lo, 0) : t]):
            lo -= 1
        latest: dict[tuple[str, str], tuple[int, int, str]] = {}
        for p in range(max(lo, 0), t):
            for j, (key, s) in enumerate(seq[p]):
                latest[(key.split("=")[0], s)] = (p, -j, key)
        expected = sorted(((p, j, key, s) for (_, s), (p, j, key) in latest.items()), reverse=True)[:5]
        assert list(zip(r["attributes"], r["sentiments"])) == [(k, s) for _, _, k, s in expected], r


def test_negatives_and_drift_are_present(world):
    s = summary(world)
    assert 0.15 < s["negative_share"] < 0.5
    assert world.drifts > 100
    liked_values: dict[tuple[str, str], set[str]] = defaultdict(set)
    for m in world.mentions.to_pylist():
        for key, sentiment in zip(m["attributes"], m["sentiments"]):
            if sentiment == "like":
                liked_values[(m["user_id"], key.split("=")[0])].add(key)
    assert sum(len(v) > 1 for v in liked_values.values()) > 50, "no user's like changed mid-sequence"


def test_summary_counts(world):
    s = summary(world)
    assert s["users"] == 1000 and s["items"] == 400 and s["interactions"] == world.interactions.num_rows
    assert sum(c["interactions"] for c in s["per_category"].values()) == s["interactions"]
    assert sum(s["rating_counts"].values()) == s["interactions"]
    assert 3.0 < s["mean_rating"] < 4.6 and s["truth_rows"] == s["interactions"]


def test_reader_yields_the_world_as_records():
    reader = WorldReader(SMALL)
    w = generate(SMALL)
    assert (reader.format, reader.synthetic_timestamps, reader.implicit_feedback) == ("world", False, False)
    assert reader.files() == []
    rows = list(reader.interactions())
    assert rows[0][0] == Location("<world seed=7>", 1) and rows[-1][0].line == len(rows)
    assert [r for _, r in rows] == w.interactions.to_pylist()
    items = list(reader.items())
    assert isinstance(items[0][1]["extra"], dict) and "attributes" in items[0][1]["extra"]
    assert len(items) == w.items.num_rows
    assert reader.truth.equals(w.truth)


def test_prepare_keeps_every_world_row(tmp_path):
    from steerrec.data.prepare import PrepareConfig, prepare

    manifest = prepare(PrepareConfig(format="world", out=str(tmp_path / "w"), world={"n_users": 40, "n_items": 40}))
    w = generate(WorldConfig(n_users=40, n_items=40, seed=0))
    assert manifest["counts"]["interactions"] == w.interactions.num_rows and manifest["kcore_dropped"] == 0
    written = pq.read_table(tmp_path / "w" / schema.INTERACTIONS_FILE)
    assert written.select(["user_id", "item_id", "timestamp"]).equals(
        w.interactions.select(["user_id", "item_id", "timestamp"])
    )
    assert pq.read_table(tmp_path / "w" / schema.TRUTH_FILE).equals(w.truth)
    assert pq.read_table(tmp_path / "w" / schema.ITEMS_FILE).equals(w.items)


@pytest.mark.parametrize(
    "field, value",
    [
        ("n_users", 4),
        ("n_items", 10),
        ("min_interactions", 3),
        ("mean_interactions", 2.0),
        ("drift", 1.5),
        ("exploration", -0.1),
    ],
)
def test_config_checks_name_field_and_value(field, value):
    with pytest.raises(ValueError, match=rf"world\.{field} .*{re.escape(str(value))}"):
        WorldConfig(**{field: value})


def _positions(world: World) -> list[int]:
    users = world.interactions.column("user_id").to_pylist()
    out, count = [], Counter()
    for u in users:
        count[u] += 1
        out.append(count[u])
    return out
