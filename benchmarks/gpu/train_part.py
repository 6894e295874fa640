"""Part 2: paper-sized TIGER through the one training loop on Ray Train (1 GPU worker) vs plain PyTorch.

The examples are synthetic (an Office-sized catalog of random semantic IDs, random
histories of 1-20 items) but go through the real path: `steerrec.train.batches.encode`,
`RecommenderTask` (its batches, loss and beam-search validation), `run_loop` under
`fit_ray` with one GPU worker, and the same loop in this process (`fit_local`, device
cuda) to split the loop's cost from Ray's. The plain side is a hand-written PyTorch loop
over the same task's batches: the same model, AdamW, gradient clipping and a loss read
back each step (as the loop does). "step" rates count forward + backward + optimizer;
"epoch" rates count each epoch's wall time, batch building included. Epoch 1 is warm-up;
the figures are the median of the others. One LC-Rec Office epoch is
ceil(38,543 / batch) steps at the Ray epoch rate (validation not included).
"""

from __future__ import annotations

import dataclasses
import math
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from benchmarks.gpu.plan import OFFICE_TRAIN_EXAMPLES, TIGER_PAPER, TrainBudget


def synthetic_prepared(budget: TrainBudget, seed: int = 0):
    """A `Prepared` for TIGER: random unique semantic IDs, random histories, encoded by the real encoder."""
    from steerrec.models.tiger import TigerConfig
    from steerrec.train import batches as B
    from steerrec.train.recommender import Prepared

    rng = np.random.default_rng(seed)
    sizes = TIGER_PAPER["codebook_sizes"]
    flat = rng.choice(int(np.prod(sizes[:3])), size=budget.n_items, replace=False)
    codes = np.stack([*np.unravel_index(flat, sizes[:3]), np.zeros(budget.n_items, dtype=np.int64)], axis=1)
    ids = [f"i{n}" for n in range(budget.n_items)]
    catalog = B.Catalog(ids, ids, codes.astype(np.int64))
    model_cfg = TigerConfig(**TIGER_PAPER)

    def examples(n: int) -> B.Examples:
        lengths = rng.integers(1, model_cfg.max_history + 1, size=n)
        history = [rng.integers(0, budget.n_items, size=k).tolist() for k in lengths]
        return B.Examples(
            history,
            [[] for _ in range(n)],
            rng.integers(0, budget.n_items, size=n),
            np.zeros(n, dtype=bool),
            np.full(n, -1, dtype=np.int64),
        )

    train, valid = examples(budget.batch_size * budget.steps), examples(budget.valid_examples)
    encode = lambda ex: B.encode("tiger", model_cfg, ex, catalog)
    return Prepared("tiger", model_cfg, catalog, encode(train), encode(valid))


def job_config(budget: TrainBudget, out: str, use_gpu: bool):
    """The RecommenderJobConfig the task reads (paths are placeholders: nothing is read from them)."""
    from steerrec.train.loop import LoopConfig, RayScaling
    from steerrec.train.recommender import RecommenderJobConfig

    loop = LoopConfig(
        epochs=budget.epochs,
        batch_size=budget.batch_size,
        lr=1e-4,
        valid_every=budget.epochs,  # one beam-search validation, at the end; a teacher-forced loss between
        patience=0,
        progress=False,
        num_threads=budget.cpus_per_worker,
        checkpoint_every=budget.epochs,
    )
    scaling = RayScaling(num_workers=1, use_gpu=use_gpu, cpus_per_worker=budget.cpus_per_worker, max_failures=0)
    return RecommenderJobConfig(
        model="tiger",
        data="synthetic",
        benchmark="synthetic",
        semantic_ids="synthetic",
        out=out,
        max_valid=budget.valid_examples,
        loop=loop,
        scaling=scaling,
    )


def plain_loop(task, cfg, device: str) -> list[dict]:
    """The same model and batches in a hand-written loop: one row per epoch (steps, busy and wall seconds)."""
    import torch

    torch.manual_seed(cfg.loop.seed)
    torch.set_num_threads(cfg.loop.num_threads)  # equal threads: the loop sets the same
    model = task.build_model().to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.loop.lr, weight_decay=cfg.loop.weight_decay)
    rows = []
    for epoch in range(1, cfg.loop.epochs + 1):
        model.train()
        steps, busy, started = 0, 0.0, time.perf_counter()
        for batch in task.train_batches(epoch, 0, 1):
            t0 = time.perf_counter()
            loss = task.loss(model, batch)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.loop.grad_clip)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            float(loss.detach())
            busy += time.perf_counter() - t0
            steps += 1
        rows.append({"steps": steps, "steps_per_s": steps / busy, "train_seconds": time.perf_counter() - started})
    return rows


def rates(history: list[dict]) -> dict:
    """Median step and epoch rates over the epochs after the first."""
    rows = history[1:] or history
    return {
        "step_per_s": statistics.median(r["steps_per_s"] for r in rows),
        "epoch_steps_per_s": statistics.median(r["steps"] / r["train_seconds"] for r in rows),
    }


def on_ray(prepared, cfg):
    from steerrec.config import to_dict
    from steerrec.train.loop import fit_ray, make_train_fn
    from steerrec.train.recommender import RecommenderTask

    config = {"job": to_dict(cfg), "loop": dataclasses.asdict(cfg.loop)}
    train_fn = make_train_fn(lambda config: RecommenderTask(prepared, cfg))
    started = time.perf_counter()
    result = fit_ray(train_fn, config, cfg.scaling, str(Path(cfg.out) / "ray"), "tiger-gpu-check")
    return result.return_value, time.perf_counter() - started


def run(budget: TrainBudget, device: str) -> dict:
    """Part 2: plain loop, the loop in this process, the loop on Ray Train; rates and ratios."""
    from steerrec.cluster import init_ray
    from steerrec.train.loop import fit_local
    from steerrec.train.recommender import RecommenderTask

    prepared = synthetic_prepared(budget)
    cfg = job_config(budget, tempfile.mkdtemp(prefix="gpu-check-train-"), device == "cuda")
    task = RecommenderTask(prepared, cfg)
    plain = rates(plain_loop(task, cfg, device))
    local_summary, _ = fit_local(RecommenderTask(prepared, cfg), cfg.loop, Path(cfg.out) / "local", device=device)
    init_ray(num_cpus=budget.cpus_per_worker + 1, include_dashboard=False, configure_logging=False)
    ray_summary, ray_wall = on_ray(prepared, cfg)
    local, ray = rates(local_summary["history"]), rates(ray_summary["history"])
    office_steps = math.ceil(OFFICE_TRAIN_EXAMPLES / budget.batch_size)
    return {
        "budget": dataclasses.asdict(budget),
        "model": TIGER_PAPER,
        "plain_pytorch": plain,
        "loop_local": local,
        "loop_ray_train": ray | {"wall_s_with_start": round(ray_wall, 1)},
        "ratio_step": ray["step_per_s"] / plain["step_per_s"],
        "ratio_epoch": ray["epoch_steps_per_s"] / plain["epoch_steps_per_s"],
        "goal": 0.95,
        "office_epoch": {"steps": office_steps, "seconds": office_steps / ray["epoch_steps_per_s"]},
        "valid_ndcg@10_random_data": ray_summary["history"][-1].get("valid_ndcg@10"),
    }
