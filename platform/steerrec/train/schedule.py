"""Learning-rate schedules as a pure function of the optimizer step: warmup, then a decay.

    lr = cfg.lr * lr_factor(step, ScheduleConfig(kind="cosine", warmup_steps=500), total_steps)

- "constant": 1 after warmup.
- "cosine": from 1 down to `min_ratio` over the steps after warmup (the preference-
  discerning reference recipe: 10k warmup steps, cosine decay).
- "linear": from 1 down to `min_ratio` in a straight line over the steps after warmup
  (IDGenRec's reference code: transformers' linear schedule with warmup, to 0).
- "inverse_sqrt": sqrt(warmup / step) after warmup (TIGER, after T5; with warmup 0 the
  decay starts at step 1).
Warmup is linear from 1/warmup to 1. The factor depends on the step count alone, so a
resumed run continues the schedule from the step stored in its checkpoint.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

KINDS = ("constant", "cosine", "linear", "inverse_sqrt")


@dataclass
class ScheduleConfig:
    kind: str = "constant"  # constant | cosine | linear | inverse_sqrt
    warmup_steps: int = 0  # linear warmup over this many optimizer steps
    min_ratio: float = 0.0  # cosine, linear: the last step's lr as a share of the peak

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"schedule.kind must be one of {KINDS}, got {self.kind!r}")
        if self.warmup_steps < 0:
            raise ValueError(f"schedule.warmup_steps must be >= 0, got {self.warmup_steps}")
        if not 0.0 <= self.min_ratio <= 1.0:
            raise ValueError(f"schedule.min_ratio must be in [0, 1], got {self.min_ratio}")


def lr_factor(step: int, cfg: ScheduleConfig, total_steps: int | None = None) -> float:
    """The multiplier of the peak lr at optimizer step `step` (1-based).

    Examples (warmup 4): step 2 -> 0.5; cosine over 12 steps at step 8 -> 0.5 (halfway
    through the 8 decay steps), linear too; inverse_sqrt at step 16 -> sqrt(4 / 16) = 0.5.
    """
    if step < 1:
        raise ValueError(f"step must be >= 1, got {step}")
    warmup = cfg.warmup_steps
    if step <= warmup:
        return step / warmup
    if cfg.kind == "constant":
        return 1.0
    if cfg.kind == "inverse_sqrt":
        return math.sqrt(max(warmup, 1) / step)
    if total_steps is None:
        raise ValueError(f"schedule.kind={cfg.kind} needs the total number of optimizer steps")
    span = max(total_steps - warmup, 1)
    progress = min((step - warmup) / span, 1.0)
    if cfg.kind == "linear":
        return cfg.min_ratio + (1.0 - cfg.min_ratio) * (1.0 - progress)
    return cfg.min_ratio + (1.0 - cfg.min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))
