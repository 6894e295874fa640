"""One pass over a rank's batches, and the small collective helpers the loop uses (train/loop.py)."""

from __future__ import annotations

import itertools
import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import nullcontext
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)


def maybe_fail(fail_at_epoch: int, marker: str, delay_s: float, epoch: int, rank: int) -> None:
    """Tests of failure recovery: rank 0 exits once at the start of `fail_at_epoch`."""
    if fail_at_epoch == epoch and rank == 0 and not Path(marker).exists():
        Path(marker).write_text(f"failed at the start of epoch {epoch}\n")
        logger.warning("fail_at_epoch=%d: exiting this worker once (test of failure recovery)", epoch)
        time.sleep(delay_s)
        os._exit(1)


def all_reduce(sums: dict[str, float], world_size: int) -> dict[str, float]:
    """Sums over ranks (float64), the same dict on every rank; unchanged with one rank."""
    if world_size == 1:
        return sums
    import torch
    import torch.distributed as dist

    names = sorted(sums)
    values = torch.tensor([float(sums[n]) for n in names], dtype=torch.float64)
    dist.all_reduce(values)
    return dict(zip(names, values.tolist()))


def with_last(items: Iterable[Any]) -> Iterator[tuple[Any, bool]]:
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


def run_epoch(
    task: Any,
    model: Any,
    optimizer: Any,
    cfg: Any,
    epoch: int,
    session: Any,
    before_step: Callable[[], None] = lambda: None,
) -> dict[str, Any]:
    """One pass over this rank's batches: mean loss and task metrics, optimizer steps, timings.

    `before_step()` runs before each optimizer step (the loop sets the scheduled lr there).
    """
    import torch
    from tqdm.auto import tqdm

    model.train()
    total, n_batches, steps, busy, started = 0.0, 0, 0, 0.0, time.perf_counter()
    sums: dict[str, float] = {}
    batches = task.train_batches(epoch, session.rank, session.world_size)
    total_batches = len(batches) if hasattr(batches, "__len__") else None
    if cfg.max_batches:  # the first max_batches of the task's shuffled batches
        batches = itertools.islice(batches, cfg.max_batches)
        total_batches = min(total_batches, cfg.max_batches) if total_batches is not None else None
    bar = tqdm(
        with_last(batches),
        total=total_batches,
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
            before_step()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            steps += 1
        busy += time.perf_counter() - t0
        total += float(loss.detach())
        n_batches += 1
        for key, value in metrics.items():
            sums[key] = sums.get(key, 0.0) + float(value)
    seconds = time.perf_counter() - started
    # the mean batch loss over every rank's batches: with DDP, the loss of the global batch, the same on every rank
    losses = all_reduce({"loss": total, "batches": float(n_batches)}, session.world_size)
    mean_loss = losses["loss"] / max(losses["batches"], 1)
    row = {"train_loss": mean_loss, "steps": steps, "steps_per_s": steps / max(busy, 1e-9)}
    row |= {k: v / max(n_batches, 1) for k, v in sums.items() if k != "examples"}
    if "examples" in sums:
        examples = all_reduce({"examples": sums["examples"]}, session.world_size)["examples"]
        row |= {"train_examples": int(examples), "examples_per_s": examples / max(seconds, 1e-9)}
    return row | {"train_seconds": seconds}
