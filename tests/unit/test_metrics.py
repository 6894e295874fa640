"""Ranking metrics and m@k by hand-worked values; the docstring examples are run too."""

from __future__ import annotations

import doctest
import math
import subprocess
import sys

import numpy as np
import pytest

from steerrec import metrics
from steerrec.metrics import (
    hit_rate_at_k,
    m_at_k,
    mrr_at_k,
    ndcg_at_k,
    ranking_metrics,
    recall_at_k,
    summarize,
)

# targets: row 0 at rank 1, row 1 at rank 3, row 2 at rank 5, row 3 absent
RANKED = np.array(
    [
        [10, 11, 12, 13, 14],
        [21, 22, 20, 23, 24],
        [31, 32, 33, 34, 30],
        [41, 42, 43, 44, 45],
    ]
)
TARGETS = np.array([10, 20, 30, 40])


def test_recall_and_hit_rate_by_hand():
    assert recall_at_k(RANKED, TARGETS, 1) == 0.25  # only row 0
    assert recall_at_k(RANKED, TARGETS, 3) == 0.5  # rows 0, 1
    assert recall_at_k(RANKED, TARGETS, 5) == 0.75  # rows 0, 1, 2
    for k in (1, 2, 3, 4, 5):
        assert hit_rate_at_k(RANKED, TARGETS, k) == recall_at_k(RANKED, TARGETS, k)


def test_ndcg_by_hand():
    assert ndcg_at_k(RANKED[1:2], TARGETS[1:2], 3) == 0.5  # rank 3: 1 / log2(4)
    assert ndcg_at_k(RANKED[1:2], TARGETS[1:2], 2) == 0.0  # rank 3 is outside the top 2
    # (1 + 1/log2(4) + 1/log2(6) + 0) / 4
    expected = (1 + 0.5 + 1 / math.log2(6)) / 4
    assert ndcg_at_k(RANKED, TARGETS, 5) == pytest.approx(expected, rel=1e-12)


def test_mrr_by_hand():
    assert mrr_at_k(RANKED, TARGETS, 5) == pytest.approx((1 + 1 / 3 + 1 / 5 + 0) / 4, rel=1e-12)
    assert mrr_at_k(RANKED, TARGETS, 3) == pytest.approx((1 + 1 / 3) / 4, rel=1e-12)


def test_string_ids_padding_and_duplicates():
    ranked = np.array([["a", "b", "c"], ["c", "c", "a"]], dtype=object)
    assert recall_at_k(ranked, np.array(["c", "c"], dtype=object), 1) == 0.5
    assert mrr_at_k(ranked, np.array(["c", "c"], dtype=object), 3) == pytest.approx((1 / 3 + 1) / 2)
    # beam-search padding (-1) never matches
    assert recall_at_k(np.array([[-1, -1], [3, -1]]), np.array([0, 3]), 2) == 0.5


def test_m_at_k_by_hand():
    pos = np.array([[1, 2, 3], [1, 2, 3], [4, 5, 6], [4, 5, 6]])
    neg = np.array([[7, 8, 9], [7, 8, 2], [7, 8, 9], [6, 8, 9]])
    targets = np.array([2, 2, 6, 6])
    # k=3: pair 0 hit/miss -> 1; pair 1 hit/hit -> 0; pair 2 hit/miss -> 1; pair 3 hit/hit -> 0
    assert m_at_k(pos, neg, targets, 3) == 0.5
    # k=2: pair 0 hit/miss -> 1; pair 1 hit/miss (2 is third) -> 1; pairs 2, 3 miss under pos -> 0
    assert m_at_k(pos, neg, targets, 2) == 0.5
    # k=1: nobody is hit under pos
    assert m_at_k(pos, neg, targets, 1) == 0.0


def test_ranking_metrics_keys_and_values():
    out = ranking_metrics(RANKED, TARGETS, ks=(1, 5))
    assert sorted(out) == ["mrr@1", "mrr@5", "ndcg@1", "ndcg@5", "recall@1", "recall@5"]
    assert out["recall@5"] == 0.75 and out["ndcg@1"] == 0.25 and out["mrr@1"] == 0.25


def test_input_errors():
    with pytest.raises(ValueError, match="fewer than k=6"):
        recall_at_k(RANKED, TARGETS, 6)
    with pytest.raises(ValueError, match="k must be a positive int"):
        ndcg_at_k(RANKED, TARGETS, 0)
    with pytest.raises(ValueError, match="targets must be 1-D with 4 rows"):
        mrr_at_k(RANKED, TARGETS[:3], 2)
    with pytest.raises(ValueError, match="ranked must be 2-D"):
        recall_at_k(RANKED[0], TARGETS, 2)
    with pytest.raises(ValueError, match="no rows"):
        recall_at_k(np.zeros((0, 3)), np.zeros(0), 2)
    with pytest.raises(ValueError, match="ranked_neg has 2 columns"):
        m_at_k(RANKED, RANKED[:, :2], TARGETS, 3)


def test_summarize_by_hand():
    out = summarize(
        [
            {"recall@10": 0.1, "ndcg@10": 0.5},
            {"recall@10": 0.3, "ndcg@10": 0.5},
            {"recall@10": 0.2, "ndcg@10": 0.2},
        ]
    )
    assert out["recall@10"]["mean"] == pytest.approx(0.2)
    assert out["recall@10"]["std"] == pytest.approx(0.1)  # sqrt((0.01 + 0.01 + 0) / 2)
    assert out["ndcg@10"]["mean"] == pytest.approx(0.4)
    assert out["ndcg@10"]["std"] == pytest.approx(math.sqrt((0.01 + 0.01 + 0.04) / 2))
    assert out["ndcg@10"]["n"] == 3
    single = summarize([{"recall@10": 0.4}])
    assert single["recall@10"]["mean"] == 0.4 and math.isnan(single["recall@10"]["std"])


def test_summarize_errors():
    with pytest.raises(ValueError, match="at least one seed"):
        summarize([])
    msg = r"seed 1 reports different metrics from seed 0: missing \['ndcg@10'\], extra \['mrr@10'\]"
    with pytest.raises(ValueError, match=msg):
        summarize([{"recall@10": 0.1, "ndcg@10": 0.1}, {"recall@10": 0.1, "mrr@10": 0.1}])


def test_docstring_examples_hold():
    result = doctest.testmod(metrics, extraglobs={"np": np})
    assert result.attempted >= 8 and result.failed == 0


def test_metrics_module_is_numpy_only():
    code = "import sys, steerrec.metrics; print([m for m in ('torch', 'ray') if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
