"""Each loss's settings, checked on construction (steerrec.alignment.losses registers them).

In an AlignConfig the preference losses sit under `loss.<name>`: `loss.name=recpo
loss.recpo.lam=2`; LangPTune's config holds `rlso` and `infonce`.
"""

from __future__ import annotations

from dataclasses import dataclass

MARGIN_FORMS = ("ratio", "difference", "log_ratio")


@dataclass
class DPOConfig:
    beta: float = 1.0  # strength of the pull toward the reference policy

    def __post_init__(self) -> None:
        _positive("loss.dpo.beta", self.beta)


@dataclass
class SDPOConfig:
    beta: float = 1.0

    def __post_init__(self) -> None:
        _positive("loss.sdpo.beta", self.beta)


@dataclass
class SimPOConfig:
    beta: float = 1.0
    gamma: float = 0.5  # target reward margin

    def __post_init__(self) -> None:
        _positive("loss.simpo.beta", self.beta)
        if self.gamma < 0:
            raise ValueError(f"loss.simpo.gamma must be >= 0, got {self.gamma}")


@dataclass
class RecPOConfig:
    beta: float = 1.0
    lam: float = 2.0  # lambda: the scale of the adaptive margin
    margin: str = "ratio"  # margin form: ratio | difference | log_ratio

    def __post_init__(self) -> None:
        _positive("loss.recpo.beta", self.beta)
        if self.lam < 0:
            raise ValueError(f"loss.recpo.lam must be >= 0, got {self.lam}")
        if self.margin not in MARGIN_FORMS:
            raise ValueError(f"loss.recpo.margin must be one of {MARGIN_FORMS}, got {self.margin!r}")


@dataclass
class RLSOConfig:
    """LangPTune's RLSO (REBEL form); it sits under `rlso` in a LangPTune config."""

    eta: float = 1.0  # the paper's eta (Appendix C: 1.0); scales the reward gap

    def __post_init__(self) -> None:
        _positive("rlso.eta", self.eta)


@dataclass
class InfoNCEConfig:
    """The embedder's contrastive loss with in-batch negatives (LangPTune Eq. 7)."""

    temperature: float = 0.1

    def __post_init__(self) -> None:
        _positive("infonce.temperature", self.temperature)


def _positive(name: str, value: float) -> None:
    if value <= 0:
        raise ValueError(f"{name} must be > 0, got {value}")
