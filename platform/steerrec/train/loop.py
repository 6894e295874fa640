"""The epoch loop every trainer shares, runnable under Ray Train or in plain PyTorch.

    result = fit_ray(make_train_fn(build_task), {"job": cfg_dict}, RayScaling(num_workers=2), "/out/ray", "run")
    summary = fit_local(task, LoopConfig(epochs=3))          # same loop, no Ray

A `Task` supplies the model, its batches and its validation; the loop owns the rest:
AdamW steps (DDP under Ray), validation each epoch, early stopping on `monitor` (higher
is better with mode "max", lower with "min") with `patience`, a checkpoint every
`checkpoint_every` epochs and at the last (model.safetensors, best.safetensors,
optimizer.safetensors + optimizer.json, state.json) reported with that epoch's metrics
(the epochs between are logged and kept in the summary's history, not reported),
and resumption from the latest checkpoint after a worker failure. A task may also define
`on_epoch_start(model, optimizer, epoch) -> dict | None`, called before each epoch's
batches (after a resume too); what it returns joins that epoch's metrics row.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

logger = logging.getLogger(__name__)

WEIGHTS, BEST, STATE = "model.safetensors", "best.safetensors", "state.json"
OPTIM, OPTIM_META = "optimizer.safetensors", "optimizer.json"


@dataclass
class LoopConfig:
    epochs: int = 10
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.01
    grad_clip: float = 1.0  # max gradient norm; 0 disables clipping
    patience: int = 3  # epochs without a better `monitor` before stopping; 0 never stops early
    monitor: str = "ndcg@10"  # validation metric
    mode: str = "max"  # "max": a higher `monitor` is better; "min": a lower one
    seed: int = 0
    checkpoint_every: int = 1  # epochs between reported checkpoints (the last epoch always has one)
    num_threads: int = 1  # torch threads per worker
    progress: bool = True  # tqdm over batches on rank 0
    fail_at_epoch: int = 0  # tests only: rank 0 exits once at the start of this epoch (1-based)
    fail_marker: str = ""  # the file that makes the failure happen once
    # seconds the failing worker waits first: Ray Train commits a reported checkpoint when the
    # controller next polls the worker (every 2 s), so a crash right after a report can lose it
    fail_delay_s: float = 5.0

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "num_threads", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"loop.{name} must be >= 1, got {getattr(self, name)}")
        if self.lr <= 0:
            raise ValueError(f"loop.lr must be > 0, got {self.lr}")
        if self.patience < 0 or self.grad_clip < 0 or self.weight_decay < 0:
            raise ValueError("loop.patience, loop.grad_clip and loop.weight_decay must be >= 0")
        if self.mode not in ("max", "min"):
            raise ValueError(f"loop.mode must be 'max' or 'min', got {self.mode!r}")
        if self.fail_at_epoch and not self.fail_marker:
            raise ValueError("loop.fail_at_epoch needs loop.fail_marker (a file path that makes it happen once)")


class Task(Protocol):
    def build_model(self) -> Any: ...
    def train_batches(self, epoch: int, rank: int, world_size: int) -> Iterable[dict[str, Any]]: ...
    def loss(self, model: Any, batch: dict[str, Any]) -> Any: ...
    def validate(self, model: Any, rank: int, world_size: int) -> dict[str, float]:
        """Sums over this rank's share of the validation set, with the example count under "count"."""
        ...


@dataclass
class LocalSession:
    """A single process: reports go to `report_fn`, checkpoints to `checkpoint_root`."""

    checkpoint_root: Path
    report_fn: Callable[[dict[str, Any]], None] | None = None
    resume_from: Path | None = None
    rank: int = 0
    world_size: int = 1
    latest: Path | None = field(default=None, init=False)

    def checkpoint(self) -> Path | None:
        return self.resume_from

    def report(self, metrics: dict[str, Any], directory: Path | None) -> None:
        if directory is not None:
            target = self.checkpoint_root / f"checkpoint_{metrics['epoch']:04d}"
            shutil.copytree(directory, target, dirs_exist_ok=True)
            self.latest = target
        if self.report_fn is not None:
            self.report_fn(metrics)

    def prepare(self, model: Any) -> Any:
        return model


class RaySession:
    """Inside a Ray Train worker: ray.train.report / get_checkpoint, DDP via prepare_model."""

    def __init__(self) -> None:
        import ray.train

        ctx = ray.train.get_context()
        self.rank, self.world_size = ctx.get_world_rank(), ctx.get_world_size()
        self._restored = ray.train.get_checkpoint()
        self._tmp = Path(tempfile.mkdtemp(prefix="steerrec-restore-"))

    def checkpoint(self) -> Path | None:
        if self._restored is None:
            return None
        return Path(self._restored.to_directory(str(self._tmp)))

    def report(self, metrics: dict[str, Any], directory: Path | None) -> None:
        import ray.train

        checkpoint = ray.train.Checkpoint.from_directory(str(directory)) if directory is not None else None
        ray.train.report(metrics, checkpoint=checkpoint)

    def prepare(self, model: Any) -> Any:
        import ray.train.torch

        return ray.train.torch.prepare_model(model)


def unwrap(model: Any) -> Any:
    return model.module if hasattr(model, "module") else model


def save_optimizer(optimizer: Any, directory: Path) -> None:
    """Optimizer state as safetensors (tensors) + JSON (param groups, scalars)."""
    import torch
    from safetensors.torch import save_file

    state = optimizer.state_dict()
    tensors, scalars = {}, {}
    for pid, values in state["state"].items():
        for name, value in values.items():
            if torch.is_tensor(value):
                tensors[f"{pid}/{name}"] = value.detach().cpu().contiguous()
            else:
                scalars[f"{pid}/{name}"] = value
    save_file(tensors, str(directory / OPTIM))
    (directory / OPTIM_META).write_text(json.dumps({"param_groups": state["param_groups"], "scalars": scalars}))


def load_optimizer(optimizer: Any, directory: Path) -> None:
    from safetensors.torch import load_file

    meta = json.loads((directory / OPTIM_META).read_text())
    state: dict[int, dict[str, Any]] = {}
    for key, value in list(load_file(str(directory / OPTIM)).items()) + list(meta["scalars"].items()):
        pid, name = key.split("/", 1)
        state.setdefault(int(pid), {})[name] = value
    optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})


def _maybe_fail(cfg: LoopConfig, epoch: int, rank: int) -> None:
    if cfg.fail_at_epoch == epoch and rank == 0 and not Path(cfg.fail_marker).exists():
        Path(cfg.fail_marker).write_text(f"failed at the start of epoch {epoch}\n")
        logger.warning("fail_at_epoch=%d: exiting this worker once (test of failure recovery)", epoch)
        time.sleep(cfg.fail_delay_s)
        os._exit(1)


def _all_reduce(sums: dict[str, float], world_size: int) -> dict[str, float]:
    if world_size == 1:
        return sums
    import torch
    import torch.distributed as dist

    names = sorted(sums)
    values = torch.tensor([float(sums[n]) for n in names], dtype=torch.float64)
    dist.all_reduce(values)
    return dict(zip(names, values.tolist()))


def _epoch(
    task: Task, model: Any, optimizer: Any, cfg: LoopConfig, epoch: int, session: Any
) -> tuple[float, int, float]:
    """One pass over this rank's batches: (mean loss, steps, seconds in steps)."""
    import torch
    from tqdm.auto import tqdm

    model.train()
    total, steps, busy = 0.0, 0, 0.0
    batches = task.train_batches(epoch, session.rank, session.world_size)
    for batch in tqdm(batches, desc=f"epoch {epoch}", leave=False, disable=not cfg.progress or session.rank != 0):
        started = time.perf_counter()
        loss = task.loss(model, batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        optimizer.step()
        busy += time.perf_counter() - started
        total += float(loss.detach())
        steps += 1
    return total / max(steps, 1), steps, busy


def run_loop(task: Task, cfg: LoopConfig, session: Any) -> dict[str, Any]:
    """Train until cfg.epochs or early stop; returns the summary (rank 0's is Ray's return_value)."""
    import torch
    from safetensors.torch import load_model, save_model

    torch.set_num_threads(cfg.num_threads)
    torch.manual_seed(cfg.seed)
    model = task.build_model()
    work = Path(tempfile.mkdtemp(prefix="steerrec-loop-"))
    state = {"epoch": 0, "best": float("-inf"), "best_epoch": 0, "bad_epochs": 0, "history": []}
    restored = session.checkpoint()
    if restored is not None:
        load_model(model, str(restored / WEIGHTS))
        shutil.copy(restored / BEST, work / BEST)
        state = json.loads((restored / STATE).read_text())
        logger.info("resuming from %s after epoch %d", restored, state["epoch"])
    model = session.prepare(model)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if restored is not None:
        load_optimizer(optimizer, restored)
    start_epoch = state["epoch"] + 1
    for epoch in range(start_epoch, cfg.epochs + 1):
        _maybe_fail(cfg, epoch, session.rank)
        started = time.perf_counter()
        hook = getattr(task, "on_epoch_start", None)
        extra = (hook(unwrap(model), optimizer, epoch) or {}) if hook is not None else {}
        loss, steps, busy = _epoch(task, model, optimizer, cfg, epoch, session)
        unwrap(model).eval()
        with torch.no_grad():
            sums = _all_reduce(task.validate(unwrap(model), session.rank, session.world_size), session.world_size)
        valid = {k: v / max(sums["count"], 1) for k, v in sums.items() if k != "count"}
        better = valid[cfg.monitor] > state["best"] if cfg.mode == "max" else valid[cfg.monitor] < state["best"]
        improved = better or state["best_epoch"] == 0  # NaN: keep the first
        if improved:
            state.update(best=valid[cfg.monitor], best_epoch=epoch, bad_epochs=0)
            if session.rank == 0:
                save_model(unwrap(model), str(work / BEST))
        else:
            state["bad_epochs"] += 1
        row = {
            "epoch": epoch,
            "train_loss": loss,
            "steps": steps,
            "steps_per_s": steps / max(busy, 1e-9),
            "seconds": time.perf_counter() - started,
            "start_epoch": start_epoch,
            **extra,
            **{f"valid_{k}": v for k, v in valid.items()},
            f"best_{cfg.monitor}": state["best"],
        }
        state["epoch"] = epoch
        state["history"].append(row)
        logger.info(
            "epoch %d: loss %.4f, valid %s %.4f (best %.4f at %d)",
            epoch,
            loss,
            cfg.monitor,
            valid[cfg.monitor],
            state["best"],
            state["best_epoch"],
        )
        stop = bool(cfg.patience) and state["bad_epochs"] >= cfg.patience
        keep = stop or epoch == cfg.epochs or epoch % cfg.checkpoint_every == 0
        if keep:  # a report costs ~2 s under Ray Train: the rows between are kept in the history only
            _report(session, model, optimizer, state, row, work)
        if stop:
            logger.info("early stop after epoch %d: no better %s for %d epochs", epoch, cfg.monitor, cfg.patience)
            break
    shutil.rmtree(work, ignore_errors=True)
    return {k: state[k] for k in ("epoch", "best", "best_epoch", "history")} | {"start_epoch": start_epoch}


def _report(session: Any, model: Any, optimizer: Any, state: dict, row: dict, work: Path) -> None:
    """Rank 0 writes the checkpoint; every rank calls report (a barrier under Ray)."""
    from safetensors.torch import save_model

    if session.rank != 0:
        session.report(row, None)
        return
    with tempfile.TemporaryDirectory(prefix="steerrec-ckpt-") as tmp:
        directory = Path(tmp)
        save_model(unwrap(model), str(directory / WEIGHTS))
        shutil.copy(work / BEST, directory / BEST)
        save_optimizer(optimizer, directory)
        (directory / STATE).write_text(json.dumps(state))
        session.report(row, directory)


def fit_local(
    task: Task,
    cfg: LoopConfig,
    checkpoint_root: str | Path | None = None,
    report: Callable[[dict[str, Any]], None] | None = None,
) -> tuple[dict[str, Any], Path | None]:
    """The same loop in this process, no Ray: (summary, latest checkpoint folder)."""
    root = Path(checkpoint_root) if checkpoint_root else Path(tempfile.mkdtemp(prefix="steerrec-fit-"))
    root.mkdir(parents=True, exist_ok=True)
    session = LocalSession(root, report)
    return run_loop(task, cfg, session), session.latest


def make_train_fn(build_task: Callable[[dict[str, Any]], Task]) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """A `train_loop_per_worker`: config {"loop": LoopConfig as dict, ...} -> run_loop under Ray."""

    def train_loop_per_worker(config: dict[str, Any]) -> dict[str, Any]:
        cfg = LoopConfig(**config["loop"])
        return run_loop(build_task(config), cfg, RaySession())

    return train_loop_per_worker


@dataclass
class RayScaling:
    num_workers: int = 1
    use_gpu: bool = False
    cpus_per_worker: int = 1
    max_failures: int = 1  # worker failures to recover from (from the latest checkpoint)

    def __post_init__(self) -> None:
        if self.num_workers < 1 or self.cpus_per_worker < 1 or self.max_failures < 0:
            raise ValueError(f"scaling: num_workers and cpus_per_worker must be >= 1, max_failures >= 0; got {self}")


def fit_ray(train_fn: Callable, config: dict[str, Any], scaling: RayScaling, storage_path: str, name: str) -> Any:
    """Run `train_fn` in a TorchTrainer (gloo on CPU, nccl on GPU); returns the Result."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer

    resources = {"CPU": scaling.cpus_per_worker} | ({"GPU": 1} if scaling.use_gpu else {})
    trainer = TorchTrainer(
        train_fn,
        train_loop_config=config,
        torch_config=TorchConfig(backend="nccl" if scaling.use_gpu else "gloo"),
        scaling_config=ScalingConfig(
            num_workers=scaling.num_workers, use_gpu=scaling.use_gpu, resources_per_worker=resources
        ),
        run_config=RunConfig(
            storage_path=storage_path,
            name=name,
            failure_config=FailureConfig(max_failures=scaling.max_failures),
            checkpoint_config=CheckpointConfig(num_to_keep=2),
        ),
    )
    result = trainer.fit()
    if result.error is not None:
        raise RuntimeError(f"training run {name!r} failed: {result.error}") from result.error
    return result
