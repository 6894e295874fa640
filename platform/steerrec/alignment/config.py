"""AlignConfig: everything one SFT or alignment run needs, composed of checked sections.

YAML or `key=value` overrides (steerrec.config.load): `lr=1e-3 loss.name=recpo
loss.recpo.lam=2 loss.recpo.margin=ratio model.source=tiny examples.n_negatives=3`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from steerrec.alignment.data import AlignmentDataConfig
from steerrec.alignment.losses import LossConfig
from steerrec.alignment.model import ModelConfig


@dataclass
class AlignConfig:
    data: str = ""  # dataset folder with interactions.parquet and items.parquet
    out: str = ""  # run folder (local path or shared mount)
    sft_run: str = ""  # align only: the SFT run folder to start from
    model: ModelConfig = field(default_factory=ModelConfig)
    examples: AlignmentDataConfig = field(default_factory=AlignmentDataConfig)
    loss: LossConfig = field(default_factory=LossConfig)  # align: loss.name and each loss's settings
    full_finetune: bool = False  # SFT trains every weight (a tiny model from scratch)
    sft_prompt_loss: bool = False  # SFT also models the prompt tokens (a model from scratch)
    lr: float = 1e-5  # the paper's; tiny models need ~1e-3
    weight_decay: float = 0.0
    epochs: int = 1
    batch_size: int = 4
    grad_accum: int = 1
    max_grad_norm: float = 1.0
    share_prompt: bool = True  # reuse each prompt's KV cache across its candidates
    users: int = 0  # keep only the first n users, sorted by id (0 = all)
    max_train: int = 0  # training examples per epoch, sampled (0 = all)
    max_valid: int = 200  # valid examples scored by greedy HR@1 after each epoch (0 = none)
    max_new_tokens: int = 32
    seed: int = 0
    threads: int = 0  # torch threads per worker (0 = torch's default)
    progress: bool = True  # tqdm over each epoch's batches (rank 0)
    num_workers: int = 1  # Ray Train workers (fit_sft / fit_align)
    cpus_per_worker: int = 1
    use_gpu: bool = False
    max_failures: int = 1  # Ray Train: worker failures to recover from (from the latest checkpoint)
    placement_strategy: str = "PACK"  # Ray Train: SPREAD puts one worker per node (steerrec.train.sessions)
    keep_checkpoints: int = 2  # Ray Train: checkpoints kept in storage
    fail_at_epoch: int = 0  # tests only: worker 0 exits once at the start of this epoch (steerrec.train.loop)
    fail_marker: str = ""  # tests only: the file that makes that failure happen once

    def __post_init__(self) -> None:
        if self.lr <= 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        for name in ("epochs", "batch_size", "grad_accum", "num_workers", "cpus_per_worker", "max_new_tokens"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("users", "max_train", "max_valid", "threads", "weight_decay", "max_failures", "max_grad_norm"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.keep_checkpoints < 1:
            raise ValueError(f"keep_checkpoints must be >= 1, got {self.keep_checkpoints}")
        if self.fail_at_epoch and not self.fail_marker:
            raise ValueError("fail_at_epoch needs fail_marker (a file path that makes the failure happen once)")
        from steerrec.train.sessions import PLACEMENT_STRATEGIES

        if self.placement_strategy not in PLACEMENT_STRATEGIES:
            raise ValueError(
                f"placement_strategy must be one of {PLACEMENT_STRATEGIES}, got {self.placement_strategy!r}"
            )

    def loop(self, stage: str):
        """The shared loop's settings for `stage` (sft | align): LoRA-only checkpoints, no early stop."""
        from steerrec.train.loop import LoopConfig

        return LoopConfig(
            epochs=self.epochs,
            batch_size=self.batch_size,
            lr=self.lr,
            weight_decay=self.weight_decay,
            grad_clip=self.max_grad_norm,
            grad_accum=self.grad_accum,
            patience=0,  # every epoch runs; the run folder keeps the last one
            monitor="hr1" if self.max_valid else "",
            seed=self.seed,
            num_threads=self.threads,
            trainable_only=True,
            progress=self.progress,
            fail_at_epoch=self.fail_at_epoch,
            fail_marker=self.fail_marker,
        )

    def scaling(self):
        from steerrec.train.loop import RayScaling

        return RayScaling(
            self.num_workers, self.use_gpu, self.cpus_per_worker, self.max_failures, self.placement_strategy
        )
