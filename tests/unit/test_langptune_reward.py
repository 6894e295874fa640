"""LangPTune's reward: cosine ranking, NDCG/MRR of the upcoming item, the cut-profile
reward, the KL penalty and per-batch whitening, against hand-worked values."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from steerrec.langptune.reward import RewardConfig, ranking_rewards, shape_rewards, top_k_by_cosine, whiten

T = torch.tensor


def test_top_k_by_cosine_by_hand():
    items = np.array([[0.0, 1.0], [1.0, 1.0], [2.0, 0.0]])
    assert top_k_by_cosine(np.array([[1.0, 0.0]]), items, 3).tolist() == [[2, 1, 0]]
    assert top_k_by_cosine(np.array([[0.0, 5.0], [1.0, 0.0]]), items, 2).tolist() == [[0, 1], [2, 1]]
    # k wider than the catalog: every item once
    assert top_k_by_cosine(np.array([[1.0, 0.0]]), items, 20).shape == (1, 3)
    with pytest.raises(ValueError, match="share D"):
        top_k_by_cosine(np.zeros((1, 3)), items, 2)


def test_ranking_rewards_ndcg_and_mrr():
    ranked = np.array([[2, 1, 0], [0, 1, 2], [1, 0, 2]])
    targets = np.array([2, 2, 1])  # ranks 1, 3, 1
    ndcg = ranking_rewards(ranked, targets, RewardConfig(metric="ndcg", k=20))
    assert ndcg.tolist() == pytest.approx([1.0, 1 / math.log2(4), 1.0])
    mrr = ranking_rewards(ranked, targets, RewardConfig(metric="mrr", k=2))
    assert mrr.tolist() == pytest.approx([1.0, 0.0, 1.0])  # rank 3 is outside k = 2


def test_whiten():
    assert whiten(T([1.0, 3.0])).tolist() == pytest.approx([-1.0, 1.0])
    assert whiten(T([2.0, 2.0, 2.0])).tolist() == [0.0, 0.0, 0.0]
    x = whiten(T([0.1, 0.7, 0.2, 5.0]))
    assert float(x.mean()) == pytest.approx(0.0, abs=1e-6) and float(x.pow(2).mean()) == pytest.approx(1.0, rel=1e-5)


def test_shape_rewards_by_hand():
    args = (T([1.0, 0.5, 0.9]), T([-2.0, -3.0, -4.0]), T([-2.5, -3.0, -3.0]), T([True, True, False]))
    raw = shape_rewards(*args, RewardConfig(kl_coef=0.2, cut_reward=0.0, whiten=False))
    assert raw.tolist() == pytest.approx([0.9, 0.5, 0.2])  # the cut profile's 0.9 is replaced by 0
    cut = shape_rewards(*args, RewardConfig(kl_coef=0.0, cut_reward=-1.0, whiten=False))
    assert cut.tolist() == pytest.approx([1.0, 0.5, -1.0])
    white = shape_rewards(*args, RewardConfig(kl_coef=0.2))
    assert white.tolist() == pytest.approx(whiten(T([0.9, 0.5, 0.2])).tolist())
    scored = shape_rewards(*args, RewardConfig(kl_coef=0.2, cut_reward=0.0, whiten=False, score_cut=True))
    assert scored.tolist() == pytest.approx([0.9, 0.5, 1.1])  # the cut profile keeps its 0.9
    scored = shape_rewards(*args, RewardConfig(kl_coef=0.0, cut_reward=-1.0, whiten=False, score_cut=True))
    assert scored.tolist() == pytest.approx([1.0, 0.5, -0.1])  # ranking + Gamma for the cut one only
    all_cut = (T([0.2, 0.0]), T([-1.0, -1.0]), T([-1.0, -1.0]), T([False, False]))
    assert shape_rewards(*all_cut, RewardConfig()).tolist() == [0.0, 0.0]  # the paper's rule: no signal
    assert shape_rewards(*all_cut, RewardConfig(score_cut=True)).tolist() == pytest.approx([1.0, -1.0])


def test_config_and_shape_checks():
    with pytest.raises(ValueError, match="reward.metric must be one of"):
        RewardConfig(metric="recall")
    with pytest.raises(ValueError, match="reward.kl_coef"):
        RewardConfig(kl_coef=-0.1)
    with pytest.raises(ValueError, match="share one shape"):
        shape_rewards(T([1.0]), T([1.0, 2.0]), T([1.0]), T([True]), RewardConfig())
