"""Where the loop runs: this process (LocalSession) or a Ray Train worker / Ray Tune trial (RaySession).

A session gives the loop its rank and world size, the checkpoint to resume from, `prepare`
(device placement, DDP under Ray Train) and `report(metrics, checkpoint folder)`.
`fit_ray` runs a loop function on Ray Train's TorchTrainer with `RayScaling`.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class LocalSession:
    """A single process: reports go to `report_fn`, checkpoints to `checkpoint_root`."""

    checkpoint_root: Path
    report_fn: Callable[[dict[str, Any]], None] | None = None
    resume_from: Path | None = None
    rank: int = 0
    world_size: int = 1
    device: str = "cpu"  # where `prepare` puts the model ("cuda" for a GPU)
    latest: Path | None = field(default=None, init=False)

    def checkpoint(self) -> Path | None:
        return self.resume_from

    def report(self, metrics: dict[str, Any], directory: Path | None) -> None:
        if directory is not None:  # copied under a temporary name, then renamed: never half a checkpoint
            target = self.checkpoint_root / f"checkpoint_{metrics['epoch']:04d}"
            partial = self.checkpoint_root / f".{target.name}.partial"
            shutil.rmtree(partial, ignore_errors=True)
            shutil.copytree(directory, partial)
            shutil.rmtree(target, ignore_errors=True)
            partial.rename(target)
            self.latest = target
        if self.report_fn is not None:
            self.report_fn(metrics)

    def prepare(self, model: Any) -> Any:
        return model.to(self.device)


class RaySession:
    """Reports (metrics, checkpoint folder) through a Ray report function.

    RaySession() inside a Ray Train worker: ray.train.report / get_checkpoint, the model
    placed and wrapped in DDP by ray.train.torch.prepare_model. In a Ray Tune trial the
    trainable passes Tune's own: RaySession(tune.report, tune.Checkpoint, tune.get_checkpoint())
    (one process, no DDP; the library never imports ray.tune).
    """

    def __init__(
        self,
        report: Callable[..., None] | None = None,
        checkpoint_cls: Any = None,
        restored: Any = None,
        use_gpu: bool = False,
    ) -> None:
        import ray.train

        self._train = report is None
        if self._train:
            ctx = ray.train.get_context()
            self.rank, self.world_size = ctx.get_world_rank(), ctx.get_world_size()
            report, checkpoint_cls, restored = ray.train.report, ray.train.Checkpoint, ray.train.get_checkpoint()
        else:
            self.rank, self.world_size = 0, 1
        self._report, self._checkpoint_cls = report, checkpoint_cls or ray.train.Checkpoint
        self._restored, self._use_gpu = restored, use_gpu
        self._tmp = Path(tempfile.mkdtemp(prefix="steerrec-restore-"))

    def checkpoint(self) -> Path | None:
        if self._restored is None:
            return None
        return Path(self._restored.to_directory(str(self._tmp)))

    def report(self, metrics: dict[str, Any], directory: Path | None) -> None:
        checkpoint = self._checkpoint_cls.from_directory(str(directory)) if directory is not None else None
        self._report(metrics, checkpoint=checkpoint)

    def prepare(self, model: Any) -> Any:
        if not self._train:
            return model.to("cuda" if self._use_gpu else "cpu")
        import ray.train.torch

        return ray.train.torch.prepare_model(model)


PLACEMENT_STRATEGIES = ("PACK", "SPREAD", "STRICT_PACK", "STRICT_SPREAD")


@dataclass
class RayScaling:
    num_workers: int = 1
    use_gpu: bool = False
    cpus_per_worker: int = 1
    max_failures: int = 1  # worker failures to recover from (from the latest checkpoint)
    # PACK: workers fill one node first; SPREAD: one per node where it can (data parallel across
    # machines, and a lost node takes one worker); STRICT_*: fail rather than place otherwise
    placement_strategy: str = "PACK"

    def __post_init__(self) -> None:
        if self.num_workers < 1 or self.cpus_per_worker < 1 or self.max_failures < 0:
            raise ValueError(f"scaling: num_workers and cpus_per_worker must be >= 1, max_failures >= 0; got {self}")
        if self.placement_strategy not in PLACEMENT_STRATEGIES:
            raise ValueError(
                f"scaling.placement_strategy must be one of {PLACEMENT_STRATEGIES}, got {self.placement_strategy!r}"
            )


def fit_ray(
    train_fn: Callable, config: dict[str, Any], scaling: RayScaling, storage_path: str, name: str, keep: int = 2
) -> Any:
    """Run `train_fn` in a TorchTrainer (gloo on CPU, nccl on GPU); returns the Result.

    A rerun with the same storage_path and name resumes from that run's latest checkpoint
    (Ray Train restores its checkpoint manager from storage); `keep` checkpoints are kept.
    """
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer

    resources = {"CPU": scaling.cpus_per_worker} | ({"GPU": 1} if scaling.use_gpu else {})
    trainer = TorchTrainer(
        train_fn,
        train_loop_config=config,
        torch_config=TorchConfig(backend="nccl" if scaling.use_gpu else "gloo"),
        scaling_config=ScalingConfig(
            num_workers=scaling.num_workers,
            use_gpu=scaling.use_gpu,
            resources_per_worker=resources,
            placement_strategy=scaling.placement_strategy,
        ),
        run_config=RunConfig(
            storage_path=storage_path,
            name=name,
            failure_config=FailureConfig(max_failures=scaling.max_failures),
            checkpoint_config=CheckpointConfig(num_to_keep=keep),
        ),
    )
    result = trainer.fit()
    if result.error is not None:
        raise RuntimeError(f"training run {name!r} failed: {result.error}") from result.error
    return result
