"""Rollouts: two sampled profiles p, p' per session on the LLM engine interface, and their
sequence log-probs under the policy (LoRA on) and the reference (adapters off).

Requests are the engine interface's rows (steerrec.llm.base: `messages` +
`sampling_params`, `max_tokens` = the profile length, the knob of the paper's Table 3),
and `read_profiles` reads any engine's output rows. They run in this process on the
policy being trained (`generate_in_process`): the local engine's transformers backend
around the in-memory model, so a rollout always sees the current adapter. The embedder
phase's profiles can come from elsewhere: the Ray program's generator actors (the same
backend, the adapter handed over) or vLLM with the iteration's adapter (vllm_writer.py).
Engines report tokens, not why they stopped: a profile that used its whole budget
counts as cut (`finished` False), which gets the reward's fixed `cut_reward`.
Log-probs are of the profile text re-tokenised (+ EOS when it finished), the same ids
under every model, through steerrec.alignment.model's completion log-probs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from steerrec.langptune.sessions import Session
from steerrec.llm.base import make_sampling_params, read_messages, read_sampling
from steerrec.preferences.generate import row_seed

logger = logging.getLogger(__name__)

SAMPLES = 2  # p and p' (RLSO compares two profiles of one history)
# a plain template for tokenizers that have none (tiny test models): system, user, then the answer
FALLBACK_CHAT_TEMPLATE = (
    "{% for m in messages %}{{ m['content'] }}\n\n{% endfor %}{% if add_generation_prompt %}Profile:{% endif %}"
)


@dataclass
class RolloutConfig:
    profile_length: int = 512  # max new tokens per profile (the paper's 512; Table 3 sweeps 64..512)
    temperature: float = 1.0
    top_p: float = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.profile_length < 1:
            raise ValueError(f"rollout.profile_length must be >= 1, got {self.profile_length}")
        if self.temperature <= 0:
            raise ValueError(f"rollout.temperature must be > 0 (profiles are sampled), got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"rollout.top_p must be in (0, 1], got {self.top_p}")


@dataclass
class Profile:
    user_id: str
    t: int
    sample: int  # 0: p, 1: p'
    text: str
    finished: bool  # False: cut at profile_length
    num_generated_tokens: int


def profile_requests(
    sessions: Sequence[Session],
    messages: Callable[[Session], list[dict[str, str]]],
    cfg: RolloutConfig,
    iteration: int,
    samples: int = SAMPLES,
    seeded: bool = True,
) -> list[dict[str, Any]]:
    """Engine rows, `samples` per session, session-major (row 2i is p, 2i + 1 is p').

    seeded: each row carries its own seed (stable per session, sample and iteration), so
    an engine samples it the same way in any batch; unseeded rows batch together.
    """
    rows = []
    for s in sessions:
        msgs = messages(s)
        for k in range(samples):
            seed = row_seed(cfg.seed, (s.user_id, s.t, k), iteration) if seeded else None
            params = make_sampling_params(cfg.temperature, cfg.top_p, cfg.profile_length, seed)
            rows.append({"user_id": s.user_id, "t": s.t, "sample": k, "messages": msgs, "sampling_params": params})
    return rows


def read_profiles(rows: Sequence[dict[str, Any]]) -> list[Profile]:
    """Profiles from engine output rows (request columns + generated_text, num_generated_tokens)."""
    out = []
    for r in rows:
        budget = read_sampling(r["sampling_params"]).max_tokens
        n = int(r.get("num_generated_tokens") or 0)
        out.append(
            Profile(str(r["user_id"]), int(r["t"]), int(r["sample"]), r.get("generated_text") or "", n < budget, n)
        )
    return out


def generate_in_process(
    model: Any, tokenizer: Any, rows: Sequence[dict[str, Any]], seed: int | None = None
) -> list[dict]:
    """`rows` with generations from `model` in this process (the local engine's transformers
    backend, batched: rows are left unseeded, one torch seed covers the call)."""
    import torch

    from steerrec.llm.local_engine import TransformersBackend

    ensure_chat_template(tokenizer)
    backend = TransformersBackend.from_model(model, tokenizer)
    was_training = model.training
    model.eval()
    if seed is not None:
        torch.manual_seed(seed)
    try:
        gens = backend.generate(
            [read_messages(r["messages"]) for r in rows], [read_sampling(r["sampling_params"]) for r in rows]
        )
    finally:
        model.train(was_training)
    return [
        {
            **r,
            "generated_text": g.text,
            "num_input_tokens": g.num_input_tokens,
            "num_generated_tokens": g.num_generated_tokens,
        }
        for r, g in zip(rows, gens)
    ]


def ensure_chat_template(tokenizer: Any) -> None:
    """Give a tokenizer without a chat template (a tiny test model's) FALLBACK_CHAT_TEMPLATE."""
    if not getattr(tokenizer, "chat_template", None):
        tokenizer.chat_template = FALLBACK_CHAT_TEMPLATE


def encode_profiles(
    tokenizer: Any, messages: Sequence[Sequence[dict[str, str]]], profiles: Sequence[Profile]
) -> tuple[list[list[int]], list[list[int]]]:
    """(prompt ids, profile ids) per profile: the prompt as the engine renders it (chat
    template, generation prompt), the profile re-tokenised plus EOS when it finished."""
    ensure_chat_template(tokenizer)
    eos = tokenizer.eos_token_id
    prompts, completions = [], []
    for msgs, p in zip(messages, profiles):
        text = tokenizer.apply_chat_template(list(msgs), tokenize=False, add_generation_prompt=True)
        prompts.append(tokenizer(text, add_special_tokens=False)["input_ids"])
        ids = tokenizer(p.text, add_special_tokens=False)["input_ids"] if p.text else []
        completions.append(ids + [eos] if p.finished or not ids else ids)
    return prompts, completions


def sequence_logps(model: Any, prompts: list[list[int]], completions: list[list[int]], chunk: int = 8) -> Any:
    """Summed log-probs [N] of each completion after its prompt (alignment's completion_logps),
    `chunk` sequences per forward; gradients flow when enabled."""
    import torch

    from steerrec.alignment.model import completion_logps

    parts = []
    for i in range(0, len(prompts), chunk):
        logps, _ = completion_logps(model, prompts[i : i + chunk], completions[i : i + chunk])
        parts.append(logps.sum(dim=1))
    return torch.cat(parts)


def reference_logps(model: Any, prompts: list[list[int]], completions: list[list[int]], chunk: int = 8) -> Any:
    """`sequence_logps` under the reference policy: the adapter disabled (alignment's `reference`)."""
    from steerrec.alignment.model import reference

    with reference(model) as ref:
        return sequence_logps(ref, prompts, completions, chunk)
