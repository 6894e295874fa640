"""Per-node rates on a simulated multi-node cluster (steerrec.local_cluster: a head with no
CPUs and two worker nodes on this machine), the inputs of README's scaling projection.

    .venv/bin/python benchmarks/multinode_scaling.py --steps 40 --epochs 3 --batch-size 32

- DDP: TIGER (benchmarks/train_overhead.py's synthetic task) on Ray Train, 1 worker x batch
  2B against 2 workers x batch B on two nodes (SPREAD), the same total batch per step, one
  CPU and one torch thread per worker; and 1 worker with 2 threads (equal threads, as
  CONTRACTS.md measures Ray Train overhead). "step s/s" counts forward + backward + optimizer (the
  gradient all-reduce included); "epoch s/s" the epoch's wall time. The first epoch is warm-up.
- Preference job: steerrec.preferences.approximate with the http engine against a loopback
  endpoint that answers after --latency seconds, 1 engine actor against 2 (one per node),
  each after a warm-up run; keys/s of the whole job (driver, shard writing included).
All nodes share this machine's cores, so a second node adds no compute here: these figures
measure the overhead of going wide, not its gain.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from train_overhead import SyntheticTiger, loop_cfg

from steerrec.llm.scripted_endpoint import scripted_chat_endpoint


def ddp(args, workers: int, threads: int = 1) -> tuple[float, float]:
    from steerrec.train.loop import RayScaling, fit_ray, make_train_fn

    task_args = argparse.Namespace(**{**vars(args), "batch_size": args.batch_size * 2 // workers, "threads": threads})
    scaling = RayScaling(workers, cpus_per_worker=threads, max_failures=0, placement_strategy="SPREAD")
    result = fit_ray(
        make_train_fn(lambda config: SyntheticTiger(task_args)),
        {"loop": dataclasses.asdict(loop_cfg(task_args))},
        scaling,
        tempfile.mkdtemp(prefix="ddp-"),
        f"ddp{workers}",
    )
    rows = result.return_value["history"][1:] or result.return_value["history"]
    return statistics.median(r["steps_per_s"] for r in rows), statistics.median(r["steps"] / r["seconds"] for r in rows)


def preference_rate(data: str, url: str, engines: int, batch: int) -> float:
    from steerrec.llm.base import EngineConfig, HttpSection
    from steerrec.preferences.approximate import ApproximationConfig, approximate

    engine = EngineConfig(
        engine="http", model="bench", http=HttpSection(url=url, concurrency=engines, batch_size=batch)
    )
    rates = []
    for _ in range(2):  # the first run warms the workers up
        started = time.perf_counter()
        stats = approximate(ApproximationConfig(data=data, out=tempfile.mkdtemp(prefix="prefs-"), engine=engine))
        rates.append(stats["written"] / (time.perf_counter() - started))
    return rates[-1]


def world(root: Path, users: int) -> str:
    from steerrec.data.prepare import PrepareConfig, prepare

    prepare(PrepareConfig(format="world", out=str(root), world={"n_users": users, "n_items": 60}))
    return str(root)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40, help="DDP steps per epoch")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32, help="B: the single worker takes 2B")
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--d-model", type=int, default=128)
    parser.add_argument("--users", type=int, default=20, help="world users for the preference job")
    parser.add_argument("--latency", type=float, default=0.1, help="endpoint seconds per request")
    args = parser.parse_args()
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    from steerrec.local_cluster import LocalCluster

    with LocalCluster({"node_a": 2, "node_b": 2}) as lc:
        lc.connect(configure_logging=False, runtime_env={"env_vars": {"RAY_ADDRESS": lc.address}})
        import ray.data

        ray.data.DataContext.get_current().enable_progress_bars = False
        one, one_wide, two = ddp(args, 1), ddp(args, 1, threads=2), ddp(args, 2)
        b = args.batch_size
        shape = f"{args.layers}+{args.layers} layers, d_model {args.d_model}"
        print(f"TIGER {shape}, {args.steps} steps x {args.epochs} epochs")
        print(f"{'':<40}{'step s/s':>10}{'epoch s/s':>11}", flush=True)
        print(f"{f'Ray Train 1 worker x {2 * b}, 1 thread':<40}{one[0]:>10.2f}{one[1]:>11.2f}")
        print(f"{f'Ray Train 1 worker x {2 * b}, 2 threads':<40}{one_wide[0]:>10.2f}{one_wide[1]:>11.2f}")
        print(f"{f'Ray Train 2 workers x {b}, 1 thread, 2 nodes':<40}{two[0]:>10.2f}{two[1]:>11.2f}")
        print(f"{'2 workers / 1 worker, 1 thread':<40}{two[0] / one[0]:>10.2f}{two[1] / one[1]:>11.2f}")
        print(
            f"{'2 workers / 1 worker, equal threads':<40}{two[0] / one_wide[0]:>10.2f}{two[1] / one_wide[1]:>11.2f}",
            flush=True,
        )
        reply = json.dumps({"preferences": ["Look for sturdy tools"]})
        with scripted_chat_endpoint(lambda body: reply, latency=args.latency) as endpoint:
            data = world(Path(tempfile.mkdtemp(prefix="world-")), args.users)
            p1, p2 = preference_rate(data, endpoint.url, 1, 8), preference_rate(data, endpoint.url, 2, 8)
    print(f"preference job, endpoint {args.latency} s/request: {p1:.1f} keys/s on 1 engine, {p2:.1f} on 2 (2 nodes)")


if __name__ == "__main__":
    main()
