"""Alignment evaluation without a model: HR@1 / ValidRatio rules, probes, buckets, table, plot."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from steerrec.alignment.data import AlignmentDataConfig, Example
from steerrec.alignment.evaluate import build_probes, hit_metrics, hr1_by_history, plot, results_table


def _ex(cands, target, t=5):
    return Example(
        "u", t, "test", [("A", 5.0)], list(cands), list(cands), [3.0] * len(cands), [10] * len(cands), target
    )


def test_hit_metrics_by_hand():
    examples = [_ex(["X", "Y", "Z"], 0), _ex(["X", "Y", "Z"], 1), _ex(["X", "Y", "Y"], 1), _ex(["X", "Y"], 0)]
    answers = [" X ", "Z", "Y", "nothing"]
    # hit (X is the target), valid miss (Z), duplicate title matches two candidates (valid, no hit), invalid
    assert hit_metrics(answers, examples) == {"hr1": 0.25, "valid_ratio": 0.75, "n": 4}
    with pytest.raises(ValueError):
        hit_metrics(answers[:2], examples)


def test_hr1_by_history_buckets():
    examples = [_ex(["X"], 0, t=10), _ex(["X"], 0, t=60), _ex(["X"], 0, t=61), _ex(["X"], 0, t=400)]
    out = hr1_by_history(["X", "X", "no", "X"], examples)
    assert out == {
        "hist_1-50": 1.0,
        "hist_1-50_n": 1,
        "hist_51-100": 0.5,
        "hist_51-100_n": 2,
        "hist_201+": 1.0,
        "hist_201+_n": 1,
    }


def test_probes_follow_their_rules():
    rng = np.random.default_rng(0)
    last = {"u0": (5.0, 4.0), "u1": (4.0, 1.0), "u2": (2.0, 5.0), "u3": (5.0, 3.0)}
    rows = []
    for u, (valid_r, test_r) in last.items():
        picks = rng.choice(100, size=8, replace=False)
        ratings = [4.0] * 6 + [valid_r, test_r]
        rows += [(u, f"i{i}", pos, r) for pos, (i, r) in enumerate(zip(picks, ratings))]
    inter = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp", "rating"])
    items = pd.DataFrame({"item_id": [f"i{k}" for k in range(100)], "title": [f"T{k}" for k in range(100)]})
    probes = build_probes(inter, items, AlignmentDataConfig(n_candidates=10))
    assert [e.user_id for e in probes["adherence"]] == ["u0"]  # both last items rated >= 4
    assert [e.user_id for e in probes["avoidance"]] == ["u1"] == [e.user_id for e in probes["least_preferred"]]
    ex = probes["avoidance"][0]
    ids = inter[inter.user_id == "u1"].item_id.tolist()
    assert len(ex.candidates) == 10 and ex.candidate_ids[ex.target] == ids[-2]
    assert ex.candidate_ids[ex.steps_ahead.index(1)] == ids[-1] and ex.ratings[ex.steps_ahead.index(1)] == 1.0
    assert not set(ex.candidate_ids) - {ids[-2], ids[-1]} & set(ids), "other candidates are unseen items"
    assert [h for h, _ in ex.history] == [f"T{i[1:]}" for i in ids[:-2]]


def test_table_and_plot(tmp_path):
    rows = {"sft": {"hr1": 0.1, "valid_ratio": 0.9}, "recpo": {"hr1": 0.2, "valid_ratio": 0.95}}
    table = results_table(rows, ("hr1", "valid_ratio"))
    assert table.splitlines()[2] == "| sft | 0.1000 | 0.9000 |" and "| recpo | 0.2000 | 0.9500 |" in table
    path = plot(rows, tmp_path / "p.png", ("hr1", "valid_ratio"))
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_align_config_names_bad_fields():
    from steerrec.alignment.config import AlignConfig
    from steerrec.config import ConfigError, load

    with pytest.raises(ValueError, match="loss.name must be one of"):
        load(AlignConfig, None, ["loss.name=sft"])
    with pytest.raises(ValueError, match="loss.recpo.margin must be one of"):
        load(AlignConfig, None, ["loss.recpo.margin=sqrt"])
    with pytest.raises(ValueError, match="loss.dpo.beta must be > 0"):
        load(AlignConfig, None, ["loss.dpo.beta=0"])
    with pytest.raises(ConfigError, match="loss.recpo.gamma"):
        load(AlignConfig, None, ["loss.recpo.gamma=1"])  # gamma is SimPO's
    with pytest.raises(ValueError, match="lr must be > 0"):
        AlignConfig(lr=0)
    cfg = load(AlignConfig, None, ["loss.name=simpo", "loss.simpo.gamma=1.5", "lr=1e-3"])
    assert cfg.loss.section.gamma == 1.5 and cfg.lr == 1e-3
