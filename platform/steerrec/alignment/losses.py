"""Alignment losses as pure functions of sequence log-probabilities.

Equation numbers are the RecPO paper's (papers/recpo-adaptive-margins.txt), whose
symbols were lost in extraction; the forms follow papers/NOTES.md ("Equations lost from
the RecPO text"). Notation: for a candidate item y, r(y) = log pi_theta(y | x) -
log pi_ref(y | x) with sequence log-probs; y_w is the preferred item and y_1..y_K the
dispreferred ones; sigma is the logistic function.
Inputs: policy_chosen [B], policy_rejected [B, K] (or [B] for K = 1), ref_chosen [B],
ref_rejected like policy_rejected.

Every loss returns a `LossOutput`: the batch-mean `loss` (a scalar that carries the
gradient), the detached `per_example` values [B] and, for preference losses, the
detached implicit rewards beta * r(y) of the chosen [B] and rejected [B, K] items.
Losses are computed with logsigmoid and logsumexp, so they stay finite for any finite
input. Input checks raise ValueError naming the argument (score checks read the tensor
values, which synchronises with a GPU once per call).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

from steerrec.alignment.loss_configs import (
    MARGIN_FORMS,
    DPOConfig,
    InfoNCEConfig,
    RecPOConfig,
    RLSOConfig,
    SDPOConfig,
    SimPOConfig,
)
from steerrec.alignment.loss_output import LossOutput
from steerrec.alignment.rl_losses import infonce_loss, rlso_loss

logger = logging.getLogger(__name__)

UNRATED_RATING = 3.0  # rating given to sampled negatives the user never rated (RecPO)
UNRATED_STEPS_AHEAD = 10  # and how far in the future they are taken to lie


def _vector(x: torch.Tensor, name: str) -> torch.Tensor:
    if x.ndim != 1:
        raise ValueError(f"{name} must be [B], got shape {tuple(x.shape)}")
    return x


def _negatives(x: torch.Tensor, batch: int, name: str) -> torch.Tensor:
    """[B] or [B, K] -> [B, K]."""
    x = x[:, None] if x.ndim == 1 else x
    if x.ndim != 2 or x.shape[0] != batch:
        raise ValueError(f"{name} must be [B] or [B, K] with B={batch}, got shape {tuple(x.shape)}")
    return x


def _softmax_preference(
    chosen: torch.Tensor, rejected: torch.Tensor, shift: torch.Tensor | float = 0.0
) -> torch.Tensor:
    """[B] -log sigma(-logsumexp_k(rejected_k - chosen + shift_k)); chosen [B], rejected [B, K]."""
    z = torch.logsumexp(rejected - chosen[:, None] + shift, dim=1)  # [B]
    return -F.logsigmoid(-z)


def _rewards(
    pc: torch.Tensor, pr: torch.Tensor, rc: torch.Tensor, rr: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """r(y_w) [B] and r(y_k) [B, K], shapes checked."""
    pc, rc = _vector(pc, "policy_chosen"), _vector(rc, "ref_chosen")
    if rc.shape != pc.shape:
        raise ValueError(f"ref_chosen shape {tuple(rc.shape)} differs from policy_chosen {tuple(pc.shape)}")
    pr = _negatives(pr, pc.shape[0], "policy_rejected")
    rr = _negatives(rr, pc.shape[0], "ref_rejected")
    if rr.shape != pr.shape:
        raise ValueError(f"ref_rejected shape {tuple(rr.shape)} differs from policy_rejected {tuple(pr.shape)}")
    return pc - rc, pr - rr


def _output(per_example: torch.Tensor, beta: float, r_w: torch.Tensor, r_k: torch.Tensor) -> LossOutput:
    return LossOutput(per_example.mean(), per_example.detach(), (beta * r_w).detach(), (beta * r_k).detach())


def sft_loss(token_logps: torch.Tensor, mask: torch.Tensor) -> LossOutput:
    """SFT (RecPO Eq. 1): NLL of the target tokens, averaged per token over the batch.

    mask is 1 on target tokens, 0 elsewhere. loss = -sum(mask * token_logps) / sum(mask);
    per_example is each sequence's own per-token mean. By hand: logps [[-1, -2, x],
    [-3, x, x]], mask [[1, 1, 0], [1, 0, 0]] -> loss (1 + 2 + 3) / 3 = 2, per_example
    [1.5, 3].
    """
    if token_logps.ndim != 2 or mask.shape != token_logps.shape:
        raise ValueError(
            f"token_logps and mask must both be [B, T], got {tuple(token_logps.shape)} and {tuple(mask.shape)}"
        )
    m = mask.to(token_logps.dtype)  # [B, T]
    per_seq = m.sum(dim=1)  # [B]
    if bool((per_seq == 0).any()):
        empty = torch.nonzero(per_seq == 0).flatten().tolist()
        raise ValueError(f"mask has rows with no target token: {empty}")
    nll = torch.where(m > 0, -token_logps, torch.zeros_like(token_logps))  # [B, T]; masked -inf -> 0
    return LossOutput(nll.sum() / per_seq.sum(), (nll.sum(dim=1) / per_seq).detach())


def dpo_loss(
    policy_chosen: torch.Tensor,
    policy_rejected: torch.Tensor,
    ref_chosen: torch.Tensor,
    ref_rejected: torch.Tensor,
    beta: float,
) -> LossOutput:
    """DPO (RecPO Eq. 2; Rafailov et al.): -log sigma(beta * (r(y_w) - r(y_l))) per example.

    policy_rejected/ref_rejected are [B] or [B, 1]. By hand: beta 1, r_w = 0.5, r_l = -0.5
    -> -log sigma(1) = log(1 + e^-1) = 0.3132616875.
    """
    r_w, r_l = _rewards(policy_chosen, policy_rejected, ref_chosen, ref_rejected)  # [B], [B, 1]
    if r_l.shape[1] != 1:
        raise ValueError(f"dpo_loss takes one rejected item per example, got K={r_l.shape[1]}; use sdpo_loss")
    per = -F.logsigmoid(beta * (r_w - r_l[:, 0]))  # [B]
    return _output(per, beta, r_w, r_l)


def sdpo_loss(
    policy_chosen: torch.Tensor,
    policy_rejected: torch.Tensor,
    ref_chosen: torch.Tensor,
    ref_rejected: torch.Tensor,
    beta: float,
) -> LossOutput:
    """S-DPO, softmax DPO over K negatives (RecPO Eq. 3; Chen et al. 2024):

    -log sigma(-log sum_k exp(beta * (r(y_k) - r(y_w)))). K = 1 is DPO. By hand: beta 1,
    r_w = 0, r_k = [0, 0] -> -log sigma(-log 2) = log(1 + 2) = 1.0986122887.
    """
    r_w, r_k = _rewards(policy_chosen, policy_rejected, ref_chosen, ref_rejected)  # [B], [B, K]
    per = _softmax_preference(beta * r_w, beta * r_k)  # [B]
    return _output(per, beta, r_w, r_k)


def adaptive_margin(score_chosen: torch.Tensor, score_rejected: torch.Tensor, form: str = "ratio") -> torch.Tensor:
    """RecPO's adaptive margin m_k [B, K] (Eq. 4) from scores s_w [B] and s_k [B, K].

    ratio: s_w / s_k; difference: log(1 + s_w - s_k); log_ratio: log(s_w / s_k).
    Scores must be > 0 (and 1 + s_w - s_k > 0 for difference): ValueError otherwise.
    By hand: s_w 4, s_k [2, 4] -> ratio [2, 1], difference [log 3, 0], log_ratio [log 2, 0].
    """
    if form not in MARGIN_FORMS:
        raise ValueError(f"unknown margin form {form!r}; known: {', '.join(MARGIN_FORMS)}")
    s_w = _vector(score_chosen, "score_chosen")
    s_k = _negatives(score_rejected, s_w.shape[0], "score_rejected")
    for name, s in (("score_chosen", s_w), ("score_rejected", s_k)):
        if not bool((s > 0).all()):
            raise ValueError(f"{name} must be > 0 (the margin divides by it), got min {float(s.min())}")
    if form == "ratio":
        return s_w[:, None] / s_k
    if form == "log_ratio":
        return torch.log(s_w[:, None] / s_k)
    gap = 1 + s_w[:, None] - s_k  # [B, K]
    if not bool((gap > 0).all()):
        raise ValueError(f"difference margin needs 1 + score_chosen - score_rejected > 0, got min {float(gap.min())}")
    return torch.log(gap)


def recpo_loss(
    policy_chosen: torch.Tensor,
    policy_rejected: torch.Tensor,
    ref_chosen: torch.Tensor,
    ref_rejected: torch.Tensor,
    score_chosen: torch.Tensor,
    score_rejected: torch.Tensor,
    beta: float,
    lam: float,
    margin: str = "ratio",
) -> LossOutput:
    """RecPO with adaptive reward margins (RecPO Eq. 7, as its public code computes it):

    -log sigma(-log sum_k exp(beta * (r(y_k) - r(y_w)) + lam * m_k)), m_k from
    `adaptive_margin`. lam = 0 is S-DPO. By hand: beta 1, r = 0 everywhere, s_w 4,
    s_k [2, 4], lam 1 -> ratio: log(1 + e^2 + e) = 2.4076059644; difference:
    log(1 + 3 + 1) = log 5; log_ratio: log(1 + 2 + 1) = log 4.
    """
    r_w, r_k = _rewards(policy_chosen, policy_rejected, ref_chosen, ref_rejected)  # [B], [B, K]
    m = adaptive_margin(score_chosen, score_rejected, margin)  # [B, K'] with K' = 1 or K
    if m.shape[1] != r_k.shape[1]:
        raise ValueError(f"score_rejected has {m.shape[1]} items per example, policy_rejected {r_k.shape[1]}")
    per = _softmax_preference(beta * r_w, beta * r_k, lam * m.to(r_k.dtype))  # [B]
    return _output(per, beta, r_w, r_k)


def simpo_loss(avg_logp_chosen: torch.Tensor, avg_logp_rejected: torch.Tensor, beta: float, gamma: float) -> LossOutput:
    """SimPO (Meng et al. 2024, Eq. 6), reference-free on average per-token log-probs:

    -log sigma(beta * (avg_w - avg_l) - gamma). With K > 1 negatives [B, K] the pair is
    replaced by the S-DPO softmax, -log sigma(-(log sum_k exp(beta * (avg_k - avg_w)) +
    gamma)) (our extension; K = 1 is SimPO exactly). Rewards are beta * avg_logp.
    By hand: beta 2, gamma 0.5, avg_w -1, avg_l -1.25 -> -log sigma(0) = log 2.
    """
    a_w = _vector(avg_logp_chosen, "avg_logp_chosen")  # [B]
    a_k = _negatives(avg_logp_rejected, a_w.shape[0], "avg_logp_rejected")  # [B, K]
    per = _softmax_preference(beta * a_w, beta * a_k, gamma)  # [B]
    return LossOutput(per.mean(), per.detach(), (beta * a_w).detach(), (beta * a_k).detach())


def preference_score(rating: Any, steps_ahead: Any, decay: float = 0.5) -> Any:
    """RecPO's recency-weighted preference score s = rating / (1 + t) ** decay.

    t = 0 is the very next interaction. Works on numbers, numpy arrays and tensors.
    By hand: rating 4, t 3 -> 4 / 4 ** 0.5 = 2; an unrated negative: 3 / 11 ** 0.5.
    """
    if _any(rating <= 0):
        raise ValueError(f"rating must be > 0 so that margins stay finite, got {rating!r}")
    if _any(steps_ahead < 0):
        raise ValueError(f"steps_ahead must be >= 0, got {steps_ahead!r}")
    return rating / (1 + steps_ahead) ** decay


def _any(flags: Any) -> bool:
    return bool(flags.any()) if hasattr(flags, "any") else bool(flags)


@dataclass(frozen=True)
class LossSpec:
    """One registered loss: its function, its config section and the inputs it reads.

    `inputs` name [B, 1 + K] candidate tensors (column 0 the preferred item), passed as
    (column 0, columns 1:) pairs in order: "policy" (summed log-probs), "reference" (the
    reference policy's), "mean" (per-token mean log-probs), "scores" (RecPO preference
    scores), "sampler" (RLSO: log-probs under the policy that sampled), "reward" (RLSO's
    shaped rewards); the config section's fields follow as keywords. SFT reads token
    log-probs and InfoNCE embeddings: both are called directly (`get_loss`).
    """

    fn: Callable[..., LossOutput]
    config: type | None = None
    inputs: tuple[str, ...] = ()
    max_negatives: int = 0  # 0: the data's n_negatives; DPO compares one rejected item
    family: str = "preference"  # sft | preference (alignment's loss.name) | rl | contrastive (LangPTune)

    @property
    def needs_reference(self) -> bool:
        return "reference" in self.inputs

    def __call__(self, section: Any, candidates: dict[str, torch.Tensor]) -> LossOutput:
        """The loss on `candidates` (input name -> [B, 1 + K]) with the section's settings."""
        args = [t for name in self.inputs for t in (candidates[name][:, 0], candidates[name][:, 1:])]
        return self.fn(*args, **dataclasses.asdict(section))


LOSSES: dict[str, LossSpec] = {
    "sft": LossSpec(sft_loss, family="sft"),
    "dpo": LossSpec(dpo_loss, DPOConfig, ("policy", "reference"), max_negatives=1),
    "sdpo": LossSpec(sdpo_loss, SDPOConfig, ("policy", "reference")),
    "simpo": LossSpec(simpo_loss, SimPOConfig, ("mean",)),
    "recpo": LossSpec(recpo_loss, RecPOConfig, ("policy", "reference", "scores")),
    "rlso": LossSpec(rlso_loss, RLSOConfig, ("policy", "sampler", "reward"), family="rl"),  # column 1: p'
    "infonce": LossSpec(infonce_loss, InfoNCEConfig, family="contrastive"),
}
PREFERENCE_LOSSES = tuple(name for name, spec in LOSSES.items() if spec.family == "preference")


def loss_spec(name: str) -> LossSpec:
    """The registry entry of `name`; KeyError listing the known names otherwise."""
    try:
        return LOSSES[name]
    except KeyError:
        raise KeyError(f"unknown loss {name!r}; known: {', '.join(sorted(LOSSES))}") from None


def get_loss(name: str) -> Callable[..., LossOutput]:
    """The loss function registered under `name`; KeyError listing the known names otherwise."""
    return loss_spec(name).fn


@dataclass
class LossConfig:
    """Which preference loss alignment trains with, and each loss's own settings."""

    name: str = "recpo"  # dpo | sdpo | simpo | recpo
    dpo: DPOConfig = field(default_factory=DPOConfig)
    sdpo: SDPOConfig = field(default_factory=SDPOConfig)
    simpo: SimPOConfig = field(default_factory=SimPOConfig)
    recpo: RecPOConfig = field(default_factory=RecPOConfig)

    def __post_init__(self) -> None:
        if self.name not in PREFERENCE_LOSSES:
            raise ValueError(f"loss.name must be one of {sorted(PREFERENCE_LOSSES)}, got {self.name!r}")

    @property
    def spec(self) -> LossSpec:
        return LOSSES[self.name]

    @property
    def section(self) -> Any:
        """The chosen loss's settings, e.g. RecPOConfig for name=recpo."""
        return getattr(self, self.name)

    def __call__(self, candidates: dict[str, torch.Tensor]) -> LossOutput:
        return self.spec(self.section, candidates)
