"""SFT and preference alignment as `steerrec.train.loop.Task`s: the one loop trains them.

    task = AlignTask(cfg, "align", load_examples(cfg))
    summary = run_loop(task, cfg.loop("align"), RaySession())

The model the loop trains (and DDP wraps) is a `LossModule`: its forward takes a batch of
examples and runs the whole loss, policy and reference forwards included, so DDP sees one
forward per backward although candidate scoring runs several. Checkpoints hold only the
trainable weights (a LoRA, or every weight when fine-tuning fully) plus, for a tiny model,
its tokenizer; the base is rebuilt (seeded) or loaded from the SFT run on resumption.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from steerrec.alignment.config import AlignConfig
from steerrec.alignment.data import Example
from steerrec.alignment.examples import corpus, epoch_examples, pick_candidates, shard
from steerrec.alignment.losses import LossOutput, get_loss

logger = logging.getLogger(__name__)

STAGES = ("sft", "align")


class LossModule(torch.nn.Module):
    """forward(examples) -> (loss, metrics): one forward per backward for DDP."""

    def __init__(self, policy: torch.nn.Module, step: Callable[[Any, list[Example]], LossOutput]) -> None:
        super().__init__()
        self.policy = policy
        self._step = step

    def forward(self, examples: list[Example]) -> tuple[torch.Tensor, dict[str, float]]:
        out = self._step(self.policy, examples)
        return out.loss, {k: v for k, v in out.metrics().items() if k != "loss"}


class AlignTask:
    """The Task of one stage: "sft" (next item's title) or "align" (cfg.loss from cfg.sft_run)."""

    def __init__(self, cfg: AlignConfig, stage: str, splits: dict[str, list[Example]]) -> None:
        if stage not in STAGES:
            raise ValueError(f"stage must be one of {STAGES}, got {stage!r}")
        if stage == "align" and not cfg.sft_run:
            raise ValueError("align needs sft_run: the SFT run folder to start from")
        self.cfg, self.stage, self.splits = cfg, stage, splits
        self.tokenizer: Any = None
        self.module: LossModule | None = None

    @property
    def _own_tokenizer(self) -> bool:
        """A tiny SFT model's tokenizer is trained on the data: checkpoints carry it."""
        return self.stage == "sft" and self.cfg.model.source == "tiny"

    def restore_files(self, directory: Path) -> None:
        if self._own_tokenizer:
            from steerrec.alignment.runs import load_tokenizer

            self.tokenizer = load_tokenizer(directory)

    def save_files(self, directory: Path) -> None:
        if self._own_tokenizer:
            self.tokenizer.save_pretrained(directory)

    def build_model(self) -> LossModule:
        if self.stage == "sft":
            policy, step = self._sft_policy(), self._sft_step
        else:
            from steerrec.alignment.model import add_lora
            from steerrec.alignment.runs import load_sft

            sft, self.tokenizer = load_sft(self.cfg.sft_run)
            policy, step = add_lora(sft, self.cfg.model), self._preference_step
        self.module = LossModule(policy, step)
        return self.module

    @property
    def policy(self) -> Any:
        """The trained causal LM (after run_loop: the last epoch's weights)."""
        return self.module.policy

    def _sft_policy(self) -> Any:
        from steerrec.alignment.model import add_lora, build_tiny, build_tokenizer, load_pretrained

        cfg = self.cfg
        if cfg.model.source == "tiny":
            self.tokenizer = self.tokenizer or build_tokenizer(corpus(self.splits), cfg.model.vocab_size)
            model = build_tiny(cfg.model, self.tokenizer, cfg.seed)
        else:
            model, self.tokenizer = load_pretrained(cfg.model)
        return model if cfg.full_finetune else add_lora(model, cfg.model)

    def train_batches(self, epoch: int, rank: int, world_size: int) -> list[dict[str, Any]]:
        examples = shard(epoch_examples(self.splits["train"], self.cfg, epoch), rank, world_size)
        size = self.cfg.batch_size
        return [{"examples": examples[i : i + size]} for i in range(0, len(examples), size)]

    def loss(self, model: Any, batch: dict[str, Any]) -> tuple[torch.Tensor, dict[str, float]]:
        loss, metrics = model(batch["examples"])
        return loss, {**metrics, "examples": len(batch["examples"])}

    def validate(self, model: Any, rank: int, world_size: int) -> dict[str, float]:
        """Greedy HR@1 hits and valid answers over this rank's share of the first cfg.max_valid."""
        if not self.cfg.max_valid:
            return {"count": 0.0}
        from steerrec.alignment.evaluate import score

        examples = shard(self.splits["valid"][: self.cfg.max_valid], rank, world_size)
        if not examples:
            return {"hr1": 0.0, "ratio": 0.0, "count": 0.0}
        m = score(model.policy, self.tokenizer, examples, self.cfg.max_new_tokens)
        n = len(examples)
        return {"hr1": m["hr1"] * n, "ratio": m["valid_ratio"] * n, "count": float(n)}

    def _sft_step(self, policy: Any, batch: list[Example]) -> LossOutput:
        from steerrec.alignment.model import completion_logps, encode

        prompts, comps = encode(self.tokenizer, [e.prompt() for e in batch], [[e.candidates[e.target]] for e in batch])
        targets = [c[0] for c in comps]
        if self.cfg.sft_prompt_loss:  # every token after the first is a target
            prompts, targets = [p[:1] for p in prompts], [p[1:] + t for p, t in zip(prompts, targets)]
        logps, mask = completion_logps(policy, prompts, targets)
        return get_loss("sft")(logps, mask)

    def _preference_step(self, policy: Any, batch: list[Example]) -> LossOutput:
        from steerrec.alignment.model import candidate_logps, encode, reference

        cfg, spec = self.cfg, self.cfg.loss.spec
        n_neg = spec.max_negatives or cfg.examples.n_negatives
        picks = [pick_candidates(e, n_neg, cfg.seed) for e in batch]  # [B][1 + K], preferred first
        titles = [[e.candidates[k] for k in row] for e, row in zip(batch, picks)]
        prompts, comps = encode(self.tokenizer, [e.prompt() for e in batch], titles)
        total, mean = candidate_logps(policy, prompts, comps, cfg.share_prompt)  # [B, 1 + K] each
        scores = torch.tensor([[e.scores[k] for k in row] for e, row in zip(batch, picks)], device=total.device)
        inputs = {"policy": total, "mean": mean, "scores": scores}
        if spec.needs_reference:
            with reference(policy) as ref:
                inputs["reference"], _ = candidate_logps(ref, prompts, comps, cfg.share_prompt)
        return cfg.loss(inputs)
