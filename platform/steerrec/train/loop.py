"""The epoch loop every trainer shares, runnable under Ray Train or in plain PyTorch.

    result = fit_ray(make_train_fn(build_task), {"job": cfg_dict}, RayScaling(num_workers=2), "/out/ray", "run")
    summary = fit_local(task, LoopConfig(epochs=3))          # same loop, no Ray

A `Task` supplies the model, its batches and its validation; the loop owns the rest:
AdamW steps (DDP under Ray, gradient accumulation) with a learning-rate schedule (warmup,
then cosine, linear or inverse-sqrt decay: train/schedule.py), validation every `valid_every`
epochs and at the last, early stopping on `monitor` (higher is better with mode "max",
lower with "min") after `patience` evaluations without a better value, a checkpoint every
`checkpoint_every` epochs and at the last (model.safetensors, best.safetensors,
optimizer.safetensors + optimizer.json, state.json, and the task's own files) reported with
that epoch's metrics (the epochs between are logged and kept in the summary's history),
and resumption from the latest checkpoint after a worker failure. A run can continue an
earlier one's optimizer (the task's `start_optimizer`) and schedule (`start_step`,
`total_steps`): IDGenRec's alternate rounds train each T5 that way. No pickle anywhere:
tensors go to safetensors, everything else to JSON (train/checkpoint.py). The sessions and
fit_ray live in train/sessions.py, one epoch's pass in train/epoch.py.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from steerrec.train.checkpoint import (
    BEST,
    OPTIM,
    OPTIM_META,
    STATE,
    WEIGHTS,
    latest_checkpoint,
    load_optimizer,
    load_weights,
    save_optimizer,
    save_weights,
    unwrap,
)
from steerrec.train.epoch import all_reduce, maybe_fail, run_epoch
from steerrec.train.schedule import ScheduleConfig, lr_factor
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
    "ScheduleConfig",
    "Task",
    "fit_local",
    "fit_ray",
    "latest_checkpoint",
    "load_optimizer",
    "epoch_steps",
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
    lr: float = 1e-3  # the peak learning rate (the schedule multiplies it)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    # A run that continues an earlier one (IDGenRec's rounds): the optimizer steps taken
    # before it, and the schedule's length in steps (0: this run's epochs x steps per epoch)
    start_step: int = 0
    total_steps: int = 0
    weight_decay: float = 0.01
    grad_clip: float = 1.0  # max gradient norm; 0 disables clipping
    grad_accum: int = 1  # batches whose gradients add up to one optimizer step
    # batches per rank and epoch: the first max_batches the task yields (its batches are
    # shuffled, so a random sample); 0 = all of them. IDGenRec's capped ID phase and
    # LangPTune's J embedder batches per outer iteration are this knob.
    max_batches: int = 0
    valid_every: int = 1  # epochs between full validations (the last epoch always has one)
    patience: int = 3  # evaluations without a better `monitor` before stopping; 0 never stops early
    monitor: str = "ndcg@10"  # validation metric; "" = none (the best epoch is the last)
    mode: str = "max"  # "max": a higher `monitor` is better; "min": a lower one
    seed: int = 0
    checkpoint_every: int = 1  # epochs between reported checkpoints (the last epoch always has one)
    num_threads: int = 1  # torch threads per worker; 0 = torch's default
    trainable_only: bool = False  # checkpoints hold only parameters with requires_grad (a LoRA, not its base)
    progress: bool = True  # tqdm over batches on rank 0
    fail_at_epoch: int = 0  # tests only: rank 0 exits once at the start of this epoch (1-based)
    fail_marker: str = ""  # the file that makes the failure happen once
    # seconds the failing worker waits first: Ray Train commits a reported checkpoint when the
    # controller next polls the worker (every 2 s), so a crash right after a report can lose it
    fail_delay_s: float = 5.0

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "grad_accum", "checkpoint_every", "valid_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"loop.{name} must be >= 1, got {getattr(self, name)}")
        if self.start_step < 0 or self.total_steps < 0 or self.max_batches < 0:
            raise ValueError(
                f"loop.start_step, total_steps and max_batches must be >= 0, got {self.start_step}, "
                f"{self.total_steps}, {self.max_batches}"
            )
        if self.num_threads < 0:
            raise ValueError(f"loop.num_threads must be >= 0, got {self.num_threads}")
        if self.lr <= 0:
            raise ValueError(f"loop.lr must be > 0, got {self.lr}")
        if self.patience < 0 or self.grad_clip < 0 or self.weight_decay < 0:
            raise ValueError("loop.patience, loop.grad_clip and loop.weight_decay must be >= 0")
        if self.mode not in ("max", "min"):
            raise ValueError(f"loop.mode must be 'max' or 'min', got {self.mode!r}")
        if self.fail_at_epoch and not self.fail_marker:
            raise ValueError("loop.fail_at_epoch needs loop.fail_marker (a file path that makes it happen once)")


class Task(Protocol):
    """What a trainer supplies. Optional hooks, called when the task defines them:
    `save_files(directory)` adds files to each checkpoint (e.g. a tokenizer) and
    `restore_files(directory)` reads them back before `build_model` on resumption;
    `on_epoch_start(model, optimizer, epoch) -> dict | None` runs before each epoch's
    batches (after a resume too), what it returns joins that epoch's row;
    `steps_per_epoch(world_size) -> int` (batches per rank; cosine and linear schedules need it);
    `start_optimizer() -> Path | None`: a folder with `save_optimizer`'s files whose state
    the optimizer starts from (not on a resume: the checkpoint's state wins);
    `valid_loss(model, rank, world_size) -> sums` is a cheap check (e.g. a teacher-forced
    loss) reported on the epochs without a full validation."""

    def build_model(self) -> Any: ...
    def train_batches(self, epoch: int, rank: int, world_size: int) -> Iterable[dict[str, Any]]: ...
    def loss(self, model: Any, batch: dict[str, Any]) -> Any:
        """The batch's loss, or (loss, metrics): floats averaged over the epoch's batches,
        except "examples", which is summed over batches and ranks (train_examples, examples_per_s)."""
        ...

    def validate(self, model: Any, rank: int, world_size: int) -> dict[str, float]:
        """Sums over this rank's share of the validation set, with the example count under "count"."""
        ...


def _restore(task: Task, cfg: LoopConfig, session: Any, work: Path) -> tuple[Any, Path | None, dict[str, Any]]:
    """The task's model, from the session's checkpoint when there is one: (model, checkpoint, state)."""
    state = {"epoch": 0, "step": cfg.start_step, "best": float("-inf"), "best_epoch": 0, "bad_epochs": 0, "history": []}
    restored = session.checkpoint()
    if restored is not None and hasattr(task, "restore_files"):
        task.restore_files(restored)
    model = task.build_model()
    if restored is not None:
        load_weights(model, restored / WEIGHTS, cfg.trainable_only)
        if (restored / BEST).is_file():
            shutil.copy(restored / BEST, work / BEST)
        state = {"step": 0} | json.loads((restored / STATE).read_text())
        logger.info("resuming from %s after epoch %d", restored, state["epoch"])
    return model, restored, state


def epoch_steps(task: Task, cfg: LoopConfig, world_size: int) -> int | None:
    """Optimizer steps in one epoch of `task` under `cfg` (None: the task does not say)."""
    if not hasattr(task, "steps_per_epoch"):
        return None
    batches = task.steps_per_epoch(world_size)
    return math.ceil((min(batches, cfg.max_batches) if cfg.max_batches else batches) / cfg.grad_accum)


def _scheduler(task: Task, cfg: LoopConfig, optimizer: Any, state: dict, world_size: int) -> Callable[[], None]:
    """The `before_step` of each optimizer step: count it in `state` and set the scheduled lr."""
    total = cfg.total_steps or None
    per_epoch = epoch_steps(task, cfg, world_size)
    if total is None and per_epoch is not None:
        total = cfg.start_step + cfg.epochs * per_epoch
    elif total is None and cfg.schedule.kind in ("cosine", "linear"):
        raise ValueError(f"loop.schedule.kind={cfg.schedule.kind} needs a task that knows its steps_per_epoch")

    def before_step() -> None:
        state["step"] += 1
        for group in optimizer.param_groups:
            group["lr"] = cfg.lr * lr_factor(state["step"], cfg.schedule, total)

    return before_step


def _validate(task: Task, model: Any, cfg: LoopConfig, epoch: int, session: Any) -> tuple[dict[str, float], bool]:
    """(metrics, whether this was a full validation) for this epoch, averaged over every rank's examples."""
    import torch

    full = epoch % cfg.valid_every == 0 or epoch == cfg.epochs
    check = task.validate if full else getattr(task, "valid_loss", None)
    if check is None:
        return {}, False
    unwrap(model).eval()
    with torch.no_grad():
        sums = all_reduce(check(unwrap(model), session.rank, session.world_size), session.world_size)
    return {k: v / max(sums["count"], 1) for k, v in sums.items() if k != "count"}, full


def _better(cfg: LoopConfig, value: float, state: dict) -> bool:
    if not cfg.monitor or state["best_epoch"] == 0:  # no metric, or the first evaluation (NaN included)
        return True
    return value > state["best"] if cfg.mode == "max" else value < state["best"]


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
    start = getattr(task, "start_optimizer", lambda: None)()
    if restored is not None or start is not None:
        load_optimizer(optimizer, restored if restored is not None else start)
    before_step = _scheduler(task, cfg, optimizer, state, session.world_size)
    hook = getattr(task, "on_epoch_start", None)
    start_epoch = state["epoch"] + 1
    for epoch in range(start_epoch, cfg.epochs + 1):
        maybe_fail(cfg.fail_at_epoch, cfg.fail_marker, cfg.fail_delay_s, epoch, session.rank)
        started = time.perf_counter()
        extra = (hook(unwrap(model), optimizer, epoch) or {}) if hook is not None else {}
        train = run_epoch(task, model, optimizer, cfg, epoch, session, before_step)
        valid, full = _validate(task, model, cfg, epoch, session)
        if full:
            value = valid[cfg.monitor] if cfg.monitor else float("nan")
            if _better(cfg, value, state):
                state.update(best=value, best_epoch=epoch, bad_epochs=0)
                if session.rank == 0:
                    save_weights(model, work / BEST, cfg.trainable_only)
            else:
                state["bad_epochs"] += 1
        row = {"epoch": epoch, **train, "lr": optimizer.param_groups[0]["lr"], "step": state["step"]}
        row |= {"seconds": time.perf_counter() - started, "start_epoch": start_epoch, **extra}
        row |= {f"valid_{k}": v for k, v in valid.items()}
        if cfg.monitor and state["best_epoch"]:
            row[f"best_{cfg.monitor}"] = state["best"]
        state["epoch"] = epoch
        state["history"].append(row)
        logger.info("epoch %d: loss %.4f, valid %s (best at %d)", epoch, row["train_loss"], valid, state["best_epoch"])
        stop = full and bool(cfg.patience) and state["bad_epochs"] >= cfg.patience
        if stop or epoch == cfg.epochs or epoch % cfg.checkpoint_every == 0:  # a Ray report costs ~2 s
            _report(task, session, model, optimizer, state, row, work, cfg.trainable_only)
        if stop:
            logger.info("early stop after epoch %d: no better %s in %d evaluations", epoch, cfg.monitor, cfg.patience)
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
        if (work / BEST).is_file():  # none before the first full validation
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
    """The same loop in this process, no Ray: (summary, latest checkpoint folder).

    Without `resume_from` it resumes from the newest complete checkpoint under
    `checkpoint_root`, so rerunning an interrupted job continues it.
    """
    root = Path(checkpoint_root) if checkpoint_root else Path(tempfile.mkdtemp(prefix="steerrec-fit-"))
    root.mkdir(parents=True, exist_ok=True)
    resume = Path(resume_from) if resume_from else latest_checkpoint(root)
    session = LocalSession(root, report, resume, device=device)
    return run_loop(task, cfg, session), session.latest or resume


def make_train_fn(build_task: Callable[[dict[str, Any]], Task]) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """A `train_loop_per_worker`: config {"loop": LoopConfig as dict, ...} -> run_loop under Ray."""

    def train_loop_per_worker(config: dict[str, Any]) -> dict[str, Any]:
        from steerrec.config import from_dict

        cfg = from_dict(LoopConfig, config["loop"], "train_loop_config", "loop")
        return run_loop(build_task(config), cfg, RaySession())

    return train_loop_per_worker
