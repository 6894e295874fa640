"""Candidate-selection examples for LLM alignment (RecPO's data rules)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from conftest import dataset_dir
from steerrec.alignment.data import UNSEEN_RATING, AlignmentDataConfig, build_examples, read_sdpo_json


def _frames(n_users=3, n_items=60, length=16, seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        picks = rng.choice(n_items, size=length, replace=False)
        for pos, item in enumerate(picks):
            rows.append((f"u{u}", f"i{item}", 1000 + pos, float(rng.choice([2, 4, 5]))))
    inter = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp", "rating"])
    items = pd.DataFrame(
        {"item_id": [f"i{k}" for k in range(n_items)], "title": [f"Title {k}" for k in range(n_items)]}
    )
    return inter, items


def test_candidate_sets_follow_the_rules():
    inter, items = _frames()
    cfg = AlignmentDataConfig()
    examples = build_examples(inter, items, cfg)
    assert examples, "some sequences must pass the rating filter"
    for ex in examples:
        user = inter[inter.user_id == ex.user_id]
        seen = set(user.item_id)
        ids = user.item_id.tolist()
        assert len(ex.candidates) == cfg.n_candidates == len(set(ex.candidate_ids))
        assert ex.candidate_ids[ex.target] == ids[ex.t - 1]  # the next item is a candidate
        assert ex.ratings[ex.target] >= cfg.min_rating
        future = [c for c in ex.candidate_ids if c in seen]
        if ex.split == "train":
            assert len(future) <= cfg.n_future
            assert not set(future) & set(ids[-2:]), "train candidates must not leak valid/test targets"
        else:
            assert future == [ids[ex.t - 1]]
        for c, r, s in zip(ex.candidate_ids, ex.ratings, ex.steps_ahead):
            if c not in seen:
                assert (r, s) == (UNSEEN_RATING, 10)
        assert [h for h, _ in ex.history] == [
            f"Title {i[1:]}" for i in ids[max(0, ex.t - 1 - cfg.max_history) : ex.t - 1]
        ]


def test_recpo_preferred_is_highest_score_and_prompt_format():
    inter, items = _frames(seed=1)
    ex = next(e for e in build_examples(inter, items, AlignmentDataConfig()) if e.split == "train")
    best = max(ex.scores)
    assert ex.scores[ex.preferred] == best
    # s = rating / (1 + t) ** 0.5 worked by hand for the target (t = 0): s = rating
    assert ex.scores[ex.target] == pytest.approx(ex.ratings[ex.target])
    prompt = ex.prompt()
    title, rating = ex.history[-1]
    assert f"{title} | Rating: {int(rating)}" in prompt
    assert all(c in prompt for c in ex.candidates)


def test_deterministic_by_seed():
    inter, items = _frames()
    a = build_examples(inter, items, AlignmentDataConfig(seed=3))
    b = build_examples(inter, items, AlignmentDataConfig(seed=3))
    assert [e.candidate_ids for e in a] == [e.candidate_ids for e in b]


def test_sdpo_lastfm_sample():
    root = dataset_dir("lastfm_sdpo_sample")
    val = read_sdpo_json(root / "lastfm-val.json", "valid")
    assert len(val) == 2767  # PROVENANCE.md: 2767 val rows, 20 candidates each
    assert all(len(e.candidates) == 20 and e.candidates[e.target] for e in val)
    assert val[0].history[0] == ("Boris", None) and val[0].candidates[val[0].target] == "I Set My Friends On Fire"


def test_sdpo_missing_field_named(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('[{"historyList": "a::b", "itemList": ["x"]}]')
    with pytest.raises(ValueError, match=r"bad.json: row 0: missing field 'trueSelection'"):
        read_sdpo_json(bad)
