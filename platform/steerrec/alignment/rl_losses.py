"""LangPTune's losses as pure functions (langptune-profiles Sec. 3; papers/NOTES.md).

- RLSO in the REBEL form its public code runs (NOTES.md "LangPTune as its public code runs
  it"): for two profiles p, p' sampled from pi_t for the same history,
  [ (log pi(p) - log pi_t(p)) - (log pi(p') - log pi_t(p')) - eta * (r(p) - r(p')) ]^2.
  The paper's Eq. 6 / Algorithm 1 writes the same regression divided by eta^2,
  (r(p) - r(p') - (1/eta) * (...))^2: same minimiser, equal at the paper's eta = 1.
- InfoNCE (Eq. 7) with in-batch negatives: row i's query against every row's positive
  key, cosine similarity over a temperature (0.1 in LangPTune's public code).

Both return steerrec.alignment.losses' `LossOutput` and are registered there, beside
the preference losses. Input checks raise ValueError naming the argument.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from steerrec.alignment.loss_output import LossOutput


def _pair(x: torch.Tensor, name: str) -> torch.Tensor:
    """[B] or [B, 1] -> [B]."""
    if x.ndim == 2 and x.shape[1] == 1:
        x = x[:, 0]
    if x.ndim != 1:
        raise ValueError(f"{name} must be [B] (or [B, 1]), got shape {tuple(x.shape)}")
    return x


def rlso_loss(
    policy_p: torch.Tensor,
    policy_q: torch.Tensor,
    sampler_p: torch.Tensor,
    sampler_q: torch.Tensor,
    reward_p: torch.Tensor,
    reward_q: torch.Tensor,
    eta: float,
) -> LossOutput:
    """RLSO (LangPTune Eq. 6, REBEL form), mean over the batch of
    [ (policy_p - sampler_p) - (policy_q - sampler_q) - eta * (reward_p - reward_q) ]^2.

    policy_*: sequence log-probs [B] of profiles p and p' (q) under the policy being
    trained; sampler_*: under pi_t, the policy that sampled them (constants); reward_*: their
    shaped rewards (`steerrec.langptune.reward`). By hand: eta 1, policy (-1, -2), sampler
    (-1.5, -2), rewards (1, 0.25) -> (0.5 - 0 - 0.75)^2 = 0.0625; eta 2 -> (0.5 - 1.5)^2 = 1.
    chosen_rewards / rejected_rewards carry the log-ratio of p [B] and p' [B, 1].
    """
    names = ("policy_p", "policy_q", "sampler_p", "sampler_q", "reward_p", "reward_q")
    xs = [_pair(x, n) for x, n in zip((policy_p, policy_q, sampler_p, sampler_q, reward_p, reward_q), names)]
    shapes = {tuple(x.shape) for x in xs}
    if len(shapes) != 1:
        raise ValueError(f"{', '.join(names)} must share one shape [B], got {[tuple(x.shape) for x in xs]}")
    pp, pq, sp, sq, rp, rq = xs
    ratio_p, ratio_q = pp - sp, pq - sq  # [B]
    per = (ratio_p - ratio_q - eta * (rp - rq).to(pp.dtype)) ** 2  # [B]
    return LossOutput(per.mean(), per.detach(), ratio_p.detach(), ratio_q.detach()[:, None])


def infonce_loss(
    queries: torch.Tensor, keys: torch.Tensor, temperature: float, key_ids: torch.Tensor | None = None
) -> LossOutput:
    """InfoNCE with in-batch negatives (LangPTune Eq. 7): mean over rows i of
    -log softmax_j( cos(q_i, k_j) / temperature )[i].

    queries [B, D] (profile embeddings), keys [B, D] (row i: its positive item's
    embedding); the other rows' keys are row i's negatives. key_ids [B] (item indices),
    when given, drop a negative that is row i's own positive item again (two sessions with
    the same upcoming item in one batch). By hand: temperature 0.1, q = [[1, 0], [0, 1]],
    k = [[1, 0], [0.6, 0.8]] -> logits [[10, 6], [0, 8]], loss (log(1 + e^-4) +
    log(1 + e^-8)) / 2 = 0.0092426671; with k = [[1, 0], [1, 0]] every logit ties: log 2,
    and with key_ids [7, 7] each row keeps only its positive: 0.
    """
    if queries.ndim != 2 or keys.shape != queries.shape:
        raise ValueError(f"queries and keys must both be [B, D], got {tuple(queries.shape)} and {tuple(keys.shape)}")
    logits = F.normalize(queries, dim=1) @ F.normalize(keys, dim=1).T / temperature  # [B, B]
    if key_ids is not None:
        if key_ids.shape != (queries.shape[0],):
            raise ValueError(f"key_ids must be [B] with B={queries.shape[0]}, got shape {tuple(key_ids.shape)}")
        same = key_ids[:, None] == key_ids[None, :]  # [B, B]
        same.fill_diagonal_(False)
        logits = logits.masked_fill(same.to(logits.device), float("-inf"))
    target = torch.arange(queries.shape[0], device=logits.device)
    per = F.cross_entropy(logits, target, reduction="none")  # [B]
    return LossOutput(per.mean(), per.detach())
