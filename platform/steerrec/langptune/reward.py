"""LangPTune's reward (langptune-profiles Sec. 4.3, Eq. 8; papers/NOTES.md), pure numpy/torch.

For a profile p of a session with upcoming item f:
  1. rank every item by cosine similarity between the profile's and the items' embeddings;
  2. r = NDCG@k (or MRR@k) of f in that ranking (`RewardConfig.metric`, k = 20);
  3. a profile cut at the length limit (no end-of-sequence inside the budget) gets the
     fixed reward Gamma instead (`cut_reward`, Appendix C: 0); with `score_cut` (not the
     paper's) it keeps its ranking reward plus Gamma, for budgets the untrained policy never
     finishes in (a batch of cut profiles alone has equal rewards: nothing to learn);
  4. r <- r - kl_coef * (log pi_t(p) - log pi_ref(p)) (Eq. 8; gamma = 0.2 for the
     LoRA-trained Gemma-2B in Appendix C, 0 for Llama-3-8B);
  5. whitened over the batch (zero mean, unit variance; the paper "standardizes the rewards
     within each batch"): p and p' of every session together, after steps 3-4.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from steerrec.metrics import mrr_rows, ndcg_rows

METRICS = ("ndcg", "mrr")


@dataclass
class RewardConfig:
    metric: str = "ndcg"  # ndcg | mrr, of the upcoming item
    k: int = 20  # cut-off of the ranking metric
    kl_coef: float = 0.2  # gamma in Eq. 8
    cut_reward: float = 0.0  # Gamma: the reward of a profile cut at the length limit
    whiten: bool = True  # standardize per batch
    score_cut: bool = False  # a cut profile's reward: False Gamma (the paper), True ranking + Gamma

    def __post_init__(self) -> None:
        if self.metric not in METRICS:
            raise ValueError(f"reward.metric must be one of {METRICS}, got {self.metric!r}")
        if self.k < 1:
            raise ValueError(f"reward.k must be >= 1, got {self.k}")
        if self.kl_coef < 0:
            raise ValueError(f"reward.kl_coef must be >= 0, got {self.kl_coef}")


def top_k_by_cosine(queries: np.ndarray, items: np.ndarray, k: int) -> np.ndarray:
    """Item rows [N, min(k, I)] best first, by cosine similarity of queries [N, D] to items [I, D].

    Ties keep the lower item row first. By hand: queries [[1, 0]], items [[0, 1], [1, 1],
    [2, 0]] -> cosines [0, 0.71, 1] -> [[2, 1, 0]].
    """
    queries, items = np.asarray(queries, dtype=np.float64), np.asarray(items, dtype=np.float64)
    if queries.ndim != 2 or items.ndim != 2 or queries.shape[1] != items.shape[1]:
        raise ValueError(f"queries [N, D] and items [I, D] must share D, got {queries.shape} and {items.shape}")
    q = queries / np.maximum(np.linalg.norm(queries, axis=1, keepdims=True), 1e-12)
    it = items / np.maximum(np.linalg.norm(items, axis=1, keepdims=True), 1e-12)
    scores = q @ it.T  # [N, I]
    return np.argsort(-scores, axis=1, kind="stable")[:, :k]


def ranking_rewards(ranked: np.ndarray, targets: np.ndarray, cfg: RewardConfig) -> np.ndarray:
    """NDCG@k or MRR@k [N] of each row's target row in `ranked` [N, >= 1] (k capped at its width)."""
    k = min(cfg.k, np.asarray(ranked).shape[1])
    return (ndcg_rows if cfg.metric == "ndcg" else mrr_rows)(ranked, targets, k)


def whiten(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """(x - mean) / (population std + eps) over [N]; a constant batch gives zeros.

    By hand: [1, 3] -> [-1, 1] (mean 2, std 1).
    """
    if x.ndim != 1 or x.numel() == 0:
        raise ValueError(f"whiten takes a non-empty [N] tensor, got shape {tuple(x.shape)}")
    centered = x - x.mean()
    return centered / (centered.pow(2).mean().sqrt() + eps)


def shape_rewards(
    ranking: torch.Tensor,
    logp: torch.Tensor,
    logp_ref: torch.Tensor,
    finished: torch.Tensor,
    cfg: RewardConfig,
) -> torch.Tensor:
    """The reward RLSO regresses on [N]: steps 3-5 of the module docstring.

    ranking [N] (`ranking_rewards`), logp / logp_ref [N] sequence log-probs of each profile
    under the sampling policy and the reference, finished [N] bool (False: cut at the limit).
    By hand, whiten off, kl_coef 0.2, cut_reward 0: ranking [1, 0.5, 0.9], finished
    [T, T, F], logp [-2, -3, -4], logp_ref [-2.5, -3, -3] -> [1 - 0.1, 0.5 - 0, 0 + 0.2]
    = [0.9, 0.5, 0.2]; with score_cut the cut one keeps 0.9: [0.9, 0.5, 1.1].
    """
    shapes = {tuple(t.shape) for t in (ranking, logp, logp_ref, finished)}
    if len(shapes) != 1 or ranking.ndim != 1:
        raise ValueError(f"ranking, logp, logp_ref and finished must share one shape [N], got {sorted(shapes)}")
    gamma = torch.full_like(logp, cfg.cut_reward)
    if cfg.score_cut:
        base = ranking.to(logp.dtype) + torch.where(finished.bool(), torch.zeros_like(gamma), gamma)
    else:
        base = torch.where(finished.bool(), ranking.to(logp.dtype), gamma)
    shaped = base - cfg.kl_coef * (logp - logp_ref)
    return whiten(shaped) if cfg.whiten else shaped
