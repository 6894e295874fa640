"""LangPTune's settings: one dataclass per phase, checked on construction.

Paper values (Appendix C, Llama-3-8B / Gemma-2B) against the defaults here, sized for a
CPU: RLSO batch 64 sessions (here `sessions_per_iteration` 8), 4 passes over each batch
(`passes` 1), T = 200-500 policy iterations per outer iteration (the policy loop's
epochs), CL batch 256 (`batch_size` 32), J = 800-2500 CL batches (`embedder_loop.max_batches`),
K = 5.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from steerrec.alignment.loss_configs import InfoNCEConfig, RLSOConfig
from steerrec.alignment.model import ModelConfig
from steerrec.embed import EmbedderConfig
from steerrec.langptune.reward import RewardConfig
from steerrec.langptune.rollouts import RolloutConfig
from steerrec.llm.base import VLLMSection


@dataclass
class PolicyPhaseConfig:
    """RLSO updates of the policy's LoRA: one loop epoch is one iteration t (Algorithm 1, 12-15)."""

    model: ModelConfig = field(default_factory=ModelConfig)
    rollout: RolloutConfig = field(default_factory=RolloutConfig)
    reward: RewardConfig = field(default_factory=RewardConfig)
    rlso: RLSOConfig = field(default_factory=RLSOConfig)
    sessions_per_iteration: int = 8  # histories sampled per iteration t, two profiles each
    passes: int = 1  # regression passes over an iteration's rollouts
    minibatch: int = 4  # sessions per gradient step
    logp_chunk: int = 8  # sequences per log-prob forward
    max_valid: int = 0  # valid sessions profiled greedily at each validation; 0 skips it
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("sessions_per_iteration", "passes", "minibatch", "logp_chunk"):
            if getattr(self, name) < 1:
                raise ValueError(f"policy.{name} must be >= 1, got {getattr(self, name)}")
        if self.max_valid < 0:
            raise ValueError(f"policy.max_valid must be >= 0, got {self.max_valid}")


@dataclass
class EmbedderPhaseConfig:
    """InfoNCE updates of the embedder (Algorithm 1, lines 5-8)."""

    embedder: EmbedderConfig = field(default_factory=EmbedderConfig)
    infonce: InfoNCEConfig = field(default_factory=InfoNCEConfig)
    batch_size: int = 32  # (query, positive item) pairs per batch; the other rows are negatives
    max_valid: int = 0  # valid pairs ranked at each validation; 0 skips it
    k: int = 20  # validation cut-off
    seed: int = 0

    def __post_init__(self) -> None:
        if self.batch_size < 2:
            raise ValueError(f"embedder_phase.batch_size must be >= 2 (in-batch negatives), got {self.batch_size}")
        if self.max_valid < 0:
            raise ValueError(f"embedder_phase.max_valid must be >= 0, got {self.max_valid}")
        if self.k < 1:
            raise ValueError(f"embedder_phase.k must be >= 1, got {self.k}")


@dataclass
class RayProgramConfig:
    """The actors of the Ray program (steerrec.langptune.ray_program): one trainer and
    `generators` generator actors (each a copy of the base policy and an adapter slot), or
    with engine "vllm" (a cluster; policy.model.source hf) the `vllm` section's engines
    through ray.data.llm, a LoRA request per iteration (langptune.vllm_writer)."""

    engine: str = "local"  # local: generator actors (transformers) | vllm

    generators: int = 1
    generator_cpus: float = 1.0
    generator_gpus: float = 0.0  # a cluster: e.g. 1 per generator
    trainer_cpus: float = 1.0
    trainer_gpus: float = 0.0
    threads: int = 1  # torch threads in each actor; 0 = torch's default
    vllm: VLLMSection = field(default_factory=VLLMSection)  # max_lora_rank >= policy.model.lora_r

    def __post_init__(self) -> None:
        if self.engine not in ("local", "vllm"):
            raise ValueError(f"ray.engine must be local or vllm, got {self.engine!r}")
        if self.generators < 1:
            raise ValueError(f"ray.generators must be >= 1, got {self.generators}")
        for name in ("generator_cpus", "generator_gpus", "trainer_cpus", "trainer_gpus", "threads"):
            if getattr(self, name) < 0:
                raise ValueError(f"ray.{name} must be >= 0, got {getattr(self, name)}")
