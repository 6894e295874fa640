"""What every loss returns (steerrec.alignment.losses, steerrec.alignment.rl_losses)."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class LossOutput:
    loss: torch.Tensor  # [] batch mean, differentiable
    per_example: torch.Tensor  # [B] detached
    chosen_rewards: torch.Tensor | None = None  # [B] detached, beta * r(y_w)
    rejected_rewards: torch.Tensor | None = None  # [B, K] detached, beta * r(y_k)

    def metrics(self) -> dict[str, float]:
        """Loss and reward statistics as floats, for reporting."""
        out = {"loss": float(self.loss.detach())}
        if self.chosen_rewards is not None and self.rejected_rewards is not None:
            gap = self.chosen_rewards[:, None] - self.rejected_rewards  # [B, K]
            out["rewards/chosen"] = float(self.chosen_rewards.mean())
            out["rewards/rejected"] = float(self.rejected_rewards.mean())
            out["rewards/margin"] = float(gap.mean())
            out["rewards/accuracy"] = float((gap > 0).all(dim=1).float().mean())
        return out
