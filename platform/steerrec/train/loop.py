"""The epoch loop every trainer shares, runnable under Ray Train or in plain PyTorch.

    result = fit_ray(make_train_fn(build_task), {"job": cfg_dict}, RayScaling(num_workers=2), "/out/ray", "run")
    summary = fit_local(task, LoopConfig(epochs=3))          # same loop, no Ray

A `Task` supplies the model, its batches and its validation; the loop owns the rest:
AdamW steps (DDP under Ray, gradient accumulation), validation each epoch, early stopping
on `monitor` with `patience`, a checkpoint per epoch (model.safetensors, best.safetensors,
optimizer.safetensors + optimizer.json, state.json, and the task's own files) reported
with the epoch's metrics, and resumption from the latest checkpoint after a worker failure.
No pickle anywhere: tensors go to safetensors, everything else to JSON (train/checkpoint.py).
The sessions and fit_ray live in train/sessions.py; this module re-exports them.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from steerrec.train.checkpoint import (
    BEST,
    OPTIM,
    OPTIM_META,
    STATE,
    WEIGHTS,
    load_optimizer,
    load_weights,
    save_optimizer,
    save_weights,
    unwrap,
)
from steerrec.train.sessions import LocalSession, RayScaling, RaySession, fit_ray

logger = logging.getLogger(__name__)

__all__ = [
    "BEST",
    "OPTIM",
    "OPTIM_META",
    "STATE",
    "WEIGHTS",
    "LocalSession",
    "LoopConfig",
    "RayScaling",
    "RaySession",
    "Task",
    "fit_local",
    "fit_ray",
    "load_optimizer",
    "load_weights",
    "make_train_fn",
    "run_loop",
    "save_optimizer",
    "save_weights",
    "unwrap",
]


@dataclass
class LoopConfig:
    epochs: int = 10
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.01
    grad_clip: float = 1.0  # max gradient norm; 0 disables clipping
    grad_accum: int = 1  # batches whose gradients add up to one optimizer step
    patience: int = 3  # epochs without a better `monitor` before stopping; 0 never stops early
    monitor: str = "ndcg@10"  # validation metric, higher is better; "" = none (the best epoch is the last)
    seed: int = 0
    num_threads: int = 1  # torch threads per worker; 0 = torch's default
    trainable_only: bool = False  # checkpoints hold only parameters with requires_grad (a LoRA, not its base)
    progress: bool = True  # tqdm over batches on rank 0
    fail_at_epoch: int = 0  # tests only: rank 0 exits once at the start of this epoch (1-based)
    fail_marker: str = ""  # the file that makes the failure happen once
    # seconds the failing worker waits first: Ray Train commits a reported checkpoint when the
    # controller next polls the worker (every 2 s), so a crash right after a report can lose it
    fail_delay_s: float = 5.0

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "grad_accum"):
            if getattr(self, name) < 1:
                raise ValueError(f"loop.{name} must be >= 1, got {getattr(self, name)}")
        if self.num_threads < 0:
            raise ValueError(f"loop.num_threads must be >= 0, got {self.num_threads}")
        if self.lr <= 0:
            raise ValueError(f"loop.lr must be > 0, got {self.lr}")
        if self.patience < 0 or self.grad_clip < 0 or self.weight_decay < 0:
            raise ValueError("loop.patience, loop.grad_clip and loop.weight_decay must be >= 0")
        if self.fail_at_epoch and not self.fail_marker:
            raise ValueError("loop.fail_at_epoch needs loop.fail_marker (a file path that makes it happen once)")


class Task(Protocol):
    """What a trainer supplies. Optional hooks, called when the task defines them:
    `save_files(directory)` adds files to each checkpoint (e.g. a tokenizer) and
    `restore_files(directory)` reads them back before `build_model` on resumption."""

    def build_model(self) -> Any: ...
    def train_batches(self, epoch: int, rank: int, world_size: int) -> Iterable[dict[str, Any]]: ...
    def loss(self, model: Any, batch: dict[str, Any]) -> Any:
        """The batch's loss, or (loss, metrics): floats averaged over the epoch's batches,
        except "examples", which is summed over batches and ranks (train_examples, examples_per_s)."""
        ...

    def validate(self, model: Any, rank: int, world_size: int) -> dict[str, float]:
        """Sums over this rank's share of the validation set, with the example count under "count"."""
        ...


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


def _with_last(items: Iterable[Any]) -> Iterator[tuple[Any, bool]]:
    """(item, is_last) pairs, one item of lookahead."""
    it = iter(items)
    try:
        current = next(it)
    except StopIteration:
        return
    for following in it:
        yield current, False
        current = following
    yield current, True


def _epoch(task: Task, model: Any, optimizer: Any, cfg: LoopConfig, epoch: int, session: Any) -> dict[str, Any]:
    """One pass over this rank's batches: mean loss and task metrics, optimizer steps, timings."""
    import torch
    from tqdm.auto import tqdm

    model.train()
    total, n_batches, steps, busy, started = 0.0, 0, 0, 0.0, time.perf_counter()
    sums: dict[str, float] = {}
    batches = task.train_batches(epoch, session.rank, session.world_size)
    bar = tqdm(
        _with_last(batches),
        total=len(batches) if hasattr(batches, "__len__") else None,
        desc=f"epoch {epoch}",
        leave=False,
        disable=not cfg.progress or session.rank != 0,
    )
    optimizer.zero_grad(set_to_none=True)
    for batch, last in bar:
        t0 = time.perf_counter()
        step = last or (n_batches + 1) % cfg.grad_accum == 0
        with nullcontext() if step or not hasattr(model, "no_sync") else model.no_sync():  # DDP syncs at a step
            out = task.loss(model, batch)
            loss, metrics = out if isinstance(out, tuple) else (out, {})
            (loss / cfg.grad_accum).backward()
        if step:
            if cfg.grad_clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            steps += 1
        busy += time.perf_counter() - t0
        total += float(loss.detach())
        n_batches += 1
        for key, value in metrics.items():
            sums[key] = sums.get(key, 0.0) + float(value)
    seconds = time.perf_counter() - started
    row = {"train_loss": total / max(n_batches, 1), "steps": steps, "steps_per_s": steps / max(busy, 1e-9)}
    row |= {k: v / max(n_batches, 1) for k, v in sums.items() if k != "examples"}
    if "examples" in sums:
        examples = _all_reduce({"examples": sums["examples"]}, session.world_size)["examples"]
        row |= {"train_examples": int(examples), "examples_per_s": examples / max(seconds, 1e-9)}
    return row | {"train_seconds": seconds}


def _restore(task: Task, cfg: LoopConfig, session: Any, work: Path) -> tuple[Any, Path | None, dict[str, Any]]:
    """The task's model, from the session's checkpoint when there is one: (model, checkpoint, state)."""
    state = {"epoch": 0, "best": float("-inf"), "best_epoch": 0, "bad_epochs": 0, "history": []}
    restored = session.checkpoint()
    if restored is not None and hasattr(task, "restore_files"):
        task.restore_files(restored)
    model = task.build_model()
    if restored is not None:
        load_weights(model, restored / WEIGHTS, cfg.trainable_only)
        shutil.copy(restored / BEST, work / BEST)
        state = json.loads((restored / STATE).read_text())
        logger.info("resuming from %s after epoch %d", restored, state["epoch"])
    return model, restored, state


def run_loop(task: Task, cfg: LoopConfig, session: Any) -> dict[str, Any]:
    """Train until cfg.epochs or early stop; returns the summary (rank 0's is Ray's return_value)."""
    import torch

    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    torch.manual_seed(cfg.seed)
    work = Path(tempfile.mkdtemp(prefix="steerrec-loop-"))
    model, restored, state = _restore(task, cfg, session, work)
    model = session.prepare(model)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if restored is not None:
        load_optimizer(optimizer, restored)
    start_epoch = state["epoch"] + 1
    for epoch in range(start_epoch, cfg.epochs + 1):
        _maybe_fail(cfg, epoch, session.rank)
        started = time.perf_counter()
        train = _epoch(task, model, optimizer, cfg, epoch, session)
        unwrap(model).eval()
        with torch.no_grad():
            sums = _all_reduce(task.validate(unwrap(model), session.rank, session.world_size), session.world_size)
        valid = {k: v / max(sums["count"], 1) for k, v in sums.items() if k != "count"}
        value = valid[cfg.monitor] if cfg.monitor else float("nan")
        improved = not cfg.monitor or value > state["best"] or state["best_epoch"] == 0  # NaN: keep the first
        if improved:
            state.update(best=value, best_epoch=epoch, bad_epochs=0)
            if session.rank == 0:
                save_weights(model, work / BEST, cfg.trainable_only)
        else:
            state["bad_epochs"] += 1
        row = {
            "epoch": epoch,
            **train,
            "seconds": time.perf_counter() - started,
            "start_epoch": start_epoch,
            **{f"valid_{k}": v for k, v in valid.items()},
        }
        if cfg.monitor:
            row[f"best_{cfg.monitor}"] = state["best"]
        state["epoch"] = epoch
        state["history"].append(row)
        logger.info(
            "epoch %d: loss %.4f, valid %s (best at epoch %d)", epoch, row["train_loss"], valid, state["best_epoch"]
        )
        _report(task, session, model, optimizer, state, row, work, cfg.trainable_only)
        if cfg.patience and state["bad_epochs"] >= cfg.patience:
            logger.info("early stop after epoch %d: no better %s for %d epochs", epoch, cfg.monitor, cfg.patience)
            break
    shutil.rmtree(work, ignore_errors=True)
    return {k: state[k] for k in ("epoch", "best", "best_epoch", "history")} | {"start_epoch": start_epoch}


def _report(
    task: Task, session: Any, model: Any, optimizer: Any, state: dict, row: dict, work: Path, trainable_only: bool
) -> None:
    """Rank 0 writes the checkpoint; every rank calls report (a barrier under Ray)."""
    if session.rank != 0:
        session.report(row, None)
        return
    with tempfile.TemporaryDirectory(prefix="steerrec-ckpt-") as tmp:
        directory = Path(tmp)
        save_weights(model, directory / WEIGHTS, trainable_only)
        shutil.copy(work / BEST, directory / BEST)
        save_optimizer(optimizer, directory)
        (directory / STATE).write_text(json.dumps(state))
        if hasattr(task, "save_files"):
            task.save_files(directory)
        session.report(row, directory)


def fit_local(
    task: Task,
    cfg: LoopConfig,
    checkpoint_root: str | Path | None = None,
    report: Callable[[dict[str, Any]], None] | None = None,
    resume_from: str | Path | None = None,
    device: str = "cpu",
) -> tuple[dict[str, Any], Path | None]:
    """The same loop in this process, no Ray: (summary, latest checkpoint folder)."""
    root = Path(checkpoint_root) if checkpoint_root else Path(tempfile.mkdtemp(prefix="steerrec-fit-"))
    root.mkdir(parents=True, exist_ok=True)
    session = LocalSession(root, report, Path(resume_from) if resume_from else None, device=device)
    return run_loop(task, cfg, session), session.latest


def make_train_fn(build_task: Callable[[dict[str, Any]], Task]) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """A `train_loop_per_worker`: config {"loop": LoopConfig as dict, ...} -> run_loop under Ray."""

    def train_loop_per_worker(config: dict[str, Any]) -> dict[str, Any]:
        cfg = LoopConfig(**config["loop"])
        return run_loop(build_task(config), cfg, RaySession())

    return train_loop_per_worker
