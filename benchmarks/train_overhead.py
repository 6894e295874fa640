"""Ray Train overhead: TIGER steps/s in a TorchTrainer worker vs the same loop in plain PyTorch.

    .venv/bin/python benchmarks/train_overhead.py --steps 60 --epochs 3 --batch-size 64

Both sides run steerrec.train.loop.run_loop on the same synthetic task (random semantic
IDs, random histories) with equal threads: Ray Train with one worker holding
resources_per_worker={"CPU": THREADS}, the plain loop with torch.set_num_threads(THREADS).
"step s/s" counts forward + backward + optimizer time only; "epoch s/s" counts the epoch's
wall time (batch building and the report/checkpoint included). The first epoch is warm-up;
the table shows the median of the others. Goal: overhead <= 10%.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

import numpy as np


class SyntheticTiger:
    """steerrec.train.loop.Task: TIGER on random histories; validation is a constant (not timed)."""

    def __init__(self, args) -> None:
        self.args = args

    def build_model(self):
        from steerrec.models import build_model
        from steerrec.models.tiger import TigerConfig

        a = self.args
        cfg = TigerConfig(
            codebook_sizes=[256, 256, 256, 8],
            max_history=20,
            num_layers=a.layers,
            num_decoder_layers=a.layers,
            d_model=a.d_model,
            d_ff=4 * a.d_model,
            num_heads=4,
            d_kv=a.d_model // 4,
            dropout=0.1,
        )
        return build_model("tiger", cfg)

    def train_batches(self, epoch, rank, world_size):
        import torch

        rng = np.random.default_rng(epoch)
        a = self.args
        for _ in range(a.steps):
            codes = rng.integers(0, [256, 256, 256, 8], size=(a.batch_size, 21, 4))
            tokens = torch.as_tensor(codes + np.array([3, 259, 515, 771]))
            yield {"history": tokens[:, :20].reshape(a.batch_size, -1), "target": tokens[:, 20]}

    def loss(self, model, batch):
        return model(batch)

    def validate(self, model, rank, world_size):
        return {"ndcg@10": 0.0, "count": 1.0}


def plain(args) -> tuple[dict, float]:
    from steerrec.train.loop import fit_local

    started = time.perf_counter()
    summary, _ = fit_local(SyntheticTiger(args), loop_cfg(args), tempfile.mkdtemp(prefix="overhead-"))
    return summary, time.perf_counter() - started


def loop_cfg(args):
    from steerrec.train.loop import LoopConfig

    return LoopConfig(
        epochs=args.epochs, batch_size=args.batch_size, patience=0, progress=False, num_threads=args.threads, lr=1e-4
    )


def on_ray(args) -> tuple[dict, float]:
    import dataclasses

    import ray
    from steerrec.cluster import init_ray
    from steerrec.train.loop import RayScaling, fit_ray, make_train_fn

    init_ray(num_cpus=args.threads, include_dashboard=False, configure_logging=False)
    started = time.perf_counter()
    task_args = args
    train_fn = make_train_fn(lambda config: SyntheticTiger(task_args))
    result = fit_ray(
        train_fn,
        {"loop": dataclasses.asdict(loop_cfg(args))},
        RayScaling(num_workers=1, cpus_per_worker=args.threads, max_failures=0),
        tempfile.mkdtemp(prefix="overhead-ray-"),
        "overhead",
    )
    wall = time.perf_counter() - started
    ray.shutdown()
    return result.return_value, wall


def rates(summary: dict) -> tuple[float, float]:
    rows = summary["history"][1:] or summary["history"]
    return (
        statistics.median(r["steps_per_s"] for r in rows),
        statistics.median(r["steps"] / r["seconds"] for r in rows),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60, help="steps per epoch")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--d-model", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--ray-first", action="store_true", help="run the Ray side first (order effects)")
    args = parser.parse_args()
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if args.ray_first:
        ray_run, ray_wall = on_ray(args)
        base, base_wall = plain(args)
    else:
        base, base_wall = plain(args)
        ray_run, ray_wall = on_ray(args)
    (b_step, b_epoch), (r_step, r_epoch) = rates(base), rates(ray_run)
    print(
        f"TIGER {args.layers}+{args.layers} layers, d_model {args.d_model}, batch {args.batch_size}, "
        f"{args.steps} steps x {args.epochs} epochs, {args.threads} threads"
    )
    print(f"{'':<22}{'step s/s':>10}{'epoch s/s':>11}{'total wall s':>14}")
    print(f"{'plain PyTorch':<22}{b_step:>10.2f}{b_epoch:>11.2f}{base_wall:>14.1f}")
    print(f"{'Ray Train, 1 worker':<22}{r_step:>10.2f}{r_epoch:>11.2f}{ray_wall:>14.1f}")
    print(
        f"{'overhead %':<22}{100 * (b_step / r_step - 1):>10.1f}{100 * (b_epoch / r_epoch - 1):>11.1f}"
        f"{100 * (ray_wall / base_wall - 1):>14.1f}"
    )


if __name__ == "__main__":
    main()
