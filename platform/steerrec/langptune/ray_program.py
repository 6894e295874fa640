"""LangPTune's alternation as one Ray program: a trainer actor and a generator actor group.

    with LangPTuneProgram(cfg) as program:          # cfg.ray sizes the actors
        results = program.train_and_evaluate(eval_sessions=0)

The trainer actor holds the trainable policy (base + LoRA) and the embedder, and runs
train.py's alternation itself: the InfoNCE and RLSO phases through the one training loop
(fit_local inside the actor), the run folder, resumption per outer iteration, evaluation.
The generator group (`cfg.ray.generators` actors, each the base policy + a LoRA slot, the
local engine's transformers backend) writes the embedder phase's profiles: the trainer
splits the rows into one contiguous shard per generator (shard i sampled with seed + i).
RLSO's own rollouts stay on the trainer: they must come from pi_t at every iteration t.

The hand-over, before the first iteration and after each policy phase: the trainer
serialises the peft adapter state dict to safetensors bytes (`safetensors.torch.save`, no
pickle) and puts them in the object store once (`ray.put`); each generator gets the
object (`ray.get`: the transfer), parses it and loads it (`set_peft_model_state_dict`).
Seconds per part and bytes go into done.json ("handover") and the run's results.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from steerrec.langptune.train import LangPTune, LangPTuneConfig, load_policy

logger = logging.getLogger(__name__)

PolicyHook = Callable[[Any], None]  # applied to each copy of the policy once built (tests: generation settings)


def adapter_bytes(policy: Any) -> bytes:
    """The peft adapter state dict of `policy` as safetensors bytes."""
    from peft import get_peft_model_state_dict
    from safetensors.torch import save

    state = get_peft_model_state_dict(policy)
    return save({name: t.detach().cpu().contiguous() for name, t in state.items()})


def load_adapter_bytes(policy: Any, data: bytes) -> None:
    """Load `adapter_bytes`' output into `policy` (same base, same LoRA config); every key must match."""
    from peft import set_peft_model_state_dict
    from safetensors.torch import load

    result = set_peft_model_state_dict(policy, load(data))
    unexpected = getattr(result, "unexpected_keys", [])
    if unexpected:
        raise ValueError(f"adapter hand-over: unexpected weights {sorted(unexpected)[:5]}")


def _threads(n: int) -> None:
    import torch

    if n:
        torch.set_num_threads(n)


class Generator:
    """One generator actor: the base policy with an adapter slot, writing profiles. The policy
    is built at the first hand-over (a tiny policy needs the trainer's tokenizer first), so
    the actors start beside the trainer; starting pays for the imports."""

    def __init__(self, cfg: LangPTuneConfig, hook: PolicyHook | None = None) -> None:
        import peft  # noqa: F401  (imported while the trainer starts)
        import transformers  # noqa: F401

        _threads(cfg.ray.threads)
        self.cfg, self.hook = cfg, hook
        self.policy: Any = None
        self.tokenizer: Any = None

    def _built(self) -> Any:
        if self.policy is None:
            self.policy, self.tokenizer = load_policy(self.cfg.policy.model, Path(self.cfg.out), self.cfg.seed)
            if self.hook is not None:
                self.hook(self.policy)
        return self.policy

    def load_adapter(self, box: list[Any]) -> dict[str, float]:
        """Fetch the adapter bytes (`box` holds the object ref, so the fetch is timed here) and load them."""
        import ray

        policy = self._built()  # not part of the hand-over's cost
        started = time.perf_counter()
        data = ray.get(box[0])
        fetched = time.perf_counter()
        load_adapter_bytes(policy, data)
        return {"transfer_seconds": fetched - started, "load_seconds": time.perf_counter() - fetched}

    def generate(self, rows: list[dict[str, Any]], seed: int) -> list[dict[str, Any]]:
        from steerrec.langptune.rollouts import generate_in_process

        return generate_in_process(self._built(), self.tokenizer, rows, seed=seed)

    def adapter(self) -> bytes:
        return adapter_bytes(self._built())


class GeneratorGroup:
    """The trainer's `ProfileWriter` over generator actor handles."""

    def __init__(self, handles: list[Any]) -> None:
        self.handles = handles

    def sync(self, policy: Any) -> dict[str, Any]:
        import ray

        started = time.perf_counter()
        data = adapter_bytes(policy)
        serialised = time.perf_counter()
        ref = ray.put(data)
        put = time.perf_counter()
        costs = ray.get([h.load_adapter.remote([ref]) for h in self.handles])
        done = time.perf_counter()
        out = {"bytes": len(data), "generators": len(self.handles), "serialise_seconds": serialised - started}
        out |= {"put_seconds": put - serialised, "seconds": done - started}
        out |= {key: max(c[key] for c in costs) for key in ("transfer_seconds", "load_seconds")}
        logger.info(
            "adapter hand-over: %d bytes to %d generators in %.3f s", len(data), len(self.handles), out["seconds"]
        )
        return out

    def generate(self, rows: list[dict[str, Any]], seed: int) -> list[dict[str, Any]]:
        import ray

        n = len(self.handles)
        bounds = [len(rows) * i // n for i in range(n + 1)]
        shards = [(rows[bounds[i] : bounds[i + 1]], i) for i in range(n) if bounds[i] < bounds[i + 1]]
        parts = ray.get([self.handles[i].generate.remote(shard, seed + i) for shard, i in shards])
        return [row for part in parts for row in part]


class Trainer:
    """The trainer actor: the run (policy, embedder, data) and the alternation."""

    def __init__(self, cfg: LangPTuneConfig, hook: PolicyHook | None = None) -> None:
        _threads(cfg.ray.threads)
        self.run = LangPTune(cfg)  # a tiny policy's tokenizer is written here, before any generator starts
        if hook is not None and self.run.policy is not None:
            hook(self.run.policy)

    def train_and_evaluate(self, handles: list[Any], eval_sessions: int, k: int) -> dict[str, Any]:
        from steerrec.langptune.runs import train_and_evaluate

        cfg = self.run.cfg
        writer: Any = GeneratorGroup(handles) if handles else None
        if cfg.ray.engine == "vllm" and needs_generators(cfg):
            from steerrec.langptune.vllm_writer import VLLMProfileWriter
            from steerrec.llm.base import EngineConfig

            engine = EngineConfig(engine="vllm", model=cfg.policy.model.name, vllm=cfg.ray.vllm)
            writer = VLLMProfileWriter(engine, self.run.out / "adapters")
        return train_and_evaluate(cfg, eval_sessions, k, writer, self.run)

    def adapter(self) -> bytes:
        return adapter_bytes(self.run.policy)


def needs_generators(cfg: LangPTuneConfig) -> bool:
    """True when the variant's embedder phase writes profiles (the generators' only work)."""
    from steerrec.langptune.train import VARIANTS

    return cfg.query == "profile" and VARIANTS[cfg.variant][1]


class LangPTuneProgram:
    """The driver's side: starts the trainer, then the generators, runs, and stops them on close."""

    def __init__(self, cfg: LangPTuneConfig, hook: PolicyHook | None = None) -> None:
        import ray

        r = cfg.ray
        self.cfg = cfg
        self.trainer = ray.remote(Trainer).options(num_cpus=r.trainer_cpus, num_gpus=r.trainer_gpus).remote(cfg, hook)
        self.generators = []
        if needs_generators(cfg) and r.engine == "local":  # vllm: ray.data.llm starts the engines
            actor = ray.remote(Generator).options(num_cpus=r.generator_cpus, num_gpus=r.generator_gpus)
            self.generators = [actor.remote(cfg, hook) for _ in range(r.generators)]
        ray.get([a.__ray_ready__.remote() for a in [self.trainer, *self.generators]])

    def train_and_evaluate(self, eval_sessions: int = 0, k: int = 20) -> dict[str, Any]:
        import ray

        return ray.get(self.trainer.train_and_evaluate.remote(self.generators, eval_sessions, k))

    def adapters(self) -> tuple[bytes, list[bytes]]:
        """(the trainer's adapter bytes, each generator's), to check a hand-over."""
        import ray

        return ray.get(self.trainer.adapter.remote()), ray.get([g.adapter.remote() for g in self.generators])

    def close(self) -> None:
        import ray

        for actor in [self.trainer, *self.generators]:
            ray.kill(actor)

    def __enter__(self) -> LangPTuneProgram:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
