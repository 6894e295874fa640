"""The RLSO policy phase as a `steerrec.train.loop.Task` (Algorithm 1, lines 11-16).

One loop epoch is one RLSO iteration t: `on_epoch_start` samples `sessions_per_iteration`
training sessions and two profiles for each from the current policy (that policy is pi_t),
scores them with the frozen recommender (reward.py) and records log pi_t and log pi_ref
(adapters off); the epoch's batches then regress the policy on RLSO over those rollouts
(`passes` times). Checkpoints hold the LoRA only (`LoopConfig.trainable_only`); the policy
itself comes from the caller's `make_policy` (base + a LoRA, the previous outer
iteration's adapter loaded), so the reference is always the base with the adapter off.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from steerrec.alignment.losses import LossOutput, loss_spec
from steerrec.alignment.task import LossModule
from steerrec.langptune.config import PolicyPhaseConfig
from steerrec.langptune.embedder import Catalog
from steerrec.langptune.reward import ranking_rewards, shape_rewards, top_k_by_cosine
from steerrec.langptune.rollouts import (
    encode_profiles,
    generate_in_process,
    profile_requests,
    read_profiles,
    reference_logps,
    sequence_logps,
)
from steerrec.langptune.sessions import Session, SessionConfig, profile_messages
from steerrec.llm.base import make_sampling_params

logger = logging.getLogger(__name__)

Scorer = Callable[[list[str]], np.ndarray]  # profile texts -> normalized embeddings [N, D]


class PolicyTask:
    def __init__(
        self,
        cfg: PolicyPhaseConfig,
        sessions: dict[str, list[Session]],
        catalog: Catalog,
        scorer: Scorer,
        item_vecs: np.ndarray,
        make_policy: Callable[[], tuple[Any, Any]],
        session_cfg: SessionConfig | None = None,
        outer: int = 0,
    ) -> None:
        if not sessions.get("train"):
            raise ValueError("the policy phase needs training sessions, got none")
        self.cfg, self.sessions, self.catalog = cfg, sessions, catalog
        self.scorer, self.item_vecs, self.make_policy, self.outer = scorer, item_vecs, make_policy, outer
        self.session_cfg = session_cfg or SessionConfig()
        self.tokenizer: Any = None
        self.module: LossModule | None = None
        self.rollout: dict[str, Any] = {}

    def messages(self, s: Session) -> list[dict[str, str]]:
        return profile_messages(s, self.catalog.text_of, self.session_cfg)

    def build_model(self) -> LossModule:
        policy, self.tokenizer = self.make_policy()
        self.module = LossModule(policy, self._rlso_step)
        return self.module

    def on_epoch_start(self, model: Any, optimizer: Any, epoch: int) -> dict[str, float]:
        """Rollouts of iteration t = epoch with the current policy; their statistics join the row."""
        import torch

        started = time.perf_counter()
        policy, cfg = model.policy, self.cfg
        rng = np.random.default_rng([cfg.seed, self.outer, epoch])
        train = self.sessions["train"]
        picked = [train[i] for i in rng.permutation(len(train))[: cfg.sessions_per_iteration]]
        rows = profile_requests(picked, self.messages, cfg.rollout, epoch, seeded=False)
        generated = generate_in_process(policy, self.tokenizer, rows, seed=int(rng.integers(2**31)))
        seconds = time.perf_counter() - started
        profiles = read_profiles(generated)
        prompts, comps = encode_profiles(self.tokenizer, [r["messages"] for r in rows], profiles)
        with torch.no_grad():
            sampler = sequence_logps(policy, prompts, comps, cfg.logp_chunk)
            ref = reference_logps(policy, prompts, comps, cfg.logp_chunk)
        targets = self.catalog.rows([s.target for s in picked for _ in range(2)])
        ranked = top_k_by_cosine(self.scorer([p.text for p in profiles]), self.item_vecs, cfg.reward.k)
        ranking = torch.tensor(ranking_rewards(ranked, targets, cfg.reward), dtype=sampler.dtype)
        finished = torch.tensor([p.finished for p in profiles])
        reward = shape_rewards(ranking, sampler, ref, finished, cfg.reward)
        self.rollout = {"prompts": prompts, "completions": comps, "sampler": sampler, "reward": reward}
        tokens = sum(p.num_generated_tokens for p in profiles)
        return {
            f"rollout_{cfg.reward.metric}": float(ranking.mean()),
            "rollout_cut_share": float((~finished).float().mean()),
            "rollout_kl": float((sampler - ref).mean()),
            "rollout_profile_tokens": tokens / len(profiles),
            "rollout_seconds": seconds,
            "rollout_profiles_per_s": len(profiles) / max(seconds, 1e-9),
        }

    def train_batches(self, epoch: int, rank: int, world_size: int) -> list[dict[str, Any]]:
        n = len(self.rollout.get("sampler", ())) // 2
        rng = np.random.default_rng([self.cfg.seed, self.outer, epoch, rank])
        order = [int(i) for _ in range(self.cfg.passes) for i in rng.permutation(n)][rank::world_size]
        size = self.cfg.minibatch
        return [{"sessions": order[i : i + size]} for i in range(0, len(order), size)]

    def steps_per_epoch(self, world_size: int) -> int:
        per_rank = -(-self.cfg.sessions_per_iteration * self.cfg.passes // world_size)
        return -(-per_rank // self.cfg.minibatch)

    def loss(self, model: Any, batch: dict[str, Any]) -> tuple[Any, dict[str, float]]:
        loss, metrics = model(batch["sessions"])
        return loss, {**metrics, "examples": len(batch["sessions"])}

    def _rlso_step(self, policy: Any, sessions: Sequence[int]) -> LossOutput:
        r = self.rollout
        rows = [2 * i + k for i in sessions for k in range(2)]  # p, p' of each session
        logp = sequence_logps(policy, [r["prompts"][j] for j in rows], [r["completions"][j] for j in rows])
        b = len(sessions)
        inputs = {"policy": logp.view(b, 2), "sampler": r["sampler"][rows].view(b, 2), "reward": r["reward"][rows]}
        inputs["reward"] = inputs["reward"].view(b, 2).to(logp.device)
        inputs["sampler"] = inputs["sampler"].to(logp.device)
        return loss_spec("rlso")(self.cfg.rlso, inputs)

    def validate(self, model: Any, rank: int, world_size: int) -> dict[str, float]:
        """Sums of the ranking metric of greedy profiles over this rank's share of the first max_valid."""
        sessions = self.sessions.get("valid", [])[: self.cfg.max_valid][rank::world_size]
        if not sessions:
            return {"count": 0.0}
        texts = greedy_profiles(model.policy, self.tokenizer, sessions, self.messages, self.cfg.rollout.profile_length)
        ranked = top_k_by_cosine(self.scorer(texts), self.item_vecs, self.cfg.reward.k)
        values = ranking_rewards(ranked, self.catalog.rows([s.target for s in sessions]), self.cfg.reward)
        return {f"{self.cfg.reward.metric}@{self.cfg.reward.k}": float(values.sum()), "count": float(len(sessions))}


def greedy_profiles(
    policy: Any,
    tokenizer: Any,
    sessions: Sequence[Session],
    messages: Callable[[Session], list[dict[str, str]]],
    profile_length: int,
) -> list[str]:
    """One greedy (temperature 0) profile per session from `policy`, in session order."""
    params = make_sampling_params(temperature=0.0, max_tokens=profile_length)
    rows = [
        {"user_id": s.user_id, "t": s.t, "sample": 0, "messages": messages(s), "sampling_params": params}
        for s in sessions
    ]
    return [r["generated_text"] for r in generate_in_process(policy, tokenizer, rows)]
