"""Blocked cosine matching at benchmark scale: 1M preferences x 10k items (CPU).

    .venv/bin/python benchmarks/matching_scale.py --prefs 1000000 --items 10000 --threads 2

Vectors are random, L2-normalized float32 (generated in chunks), --dim wide. Stages:
  - matmul/select: one block through numpy's BLAS vs torch.matmul, and torch.topk vs
    np.argpartition (why `matching` uses numpy for products and torch for selection);
  - item->item: for each item the most and the least similar other item (Mender Eq. 3);
  - item->prefs: for each item its top-k preferences among all users' (Eq. 4), the
    direction the steering axes need;
  - both: the same pass also keeping each preference's top-k items.
Each row gives wall seconds, CPU seconds (all threads; on a machine shared with other
work, CPU s / threads is what the wall time would be on idle cores) and the process's
peak RSS so far (resource.getrusage). Goal: the item->prefs row under 2 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from steerrec.benchmark.matching import bottomk_cosine, topk_cosine, topk_cosine_both

GOAL_S = 120.0


def random_unit(n: int, dim: int, seed: int, chunk: int = 100_000) -> np.ndarray:
    out = np.empty((n, dim), dtype=np.float32)
    rng = np.random.default_rng(seed)
    for s in range(0, n, chunk):
        block = rng.standard_normal((min(chunk, n - s), dim), dtype=np.float32)
        block /= np.linalg.norm(block, axis=1, keepdims=True)
        out[s : s + len(block)] = block
    return out


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # KiB on Linux


def best_of(fn, repeats: int = 3) -> tuple[float, float]:
    """(wall s, CPU s) of the fastest of `repeats` calls."""
    return min(_clock(fn) for _ in range(repeats))


def _clock(fn) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def kernel_rows(items: np.ndarray, prefs: np.ndarray, bq: int, bk: int, k: int) -> list[tuple]:
    q, keys = items[:bq], prefs[:bk]
    out = np.empty((len(q), len(keys)), dtype=np.float32)
    tq, tk, tout = torch.from_numpy(q), torch.from_numpy(keys), torch.from_numpy(out)
    numpy_s = best_of(lambda: np.matmul(q, keys.T, out=out))
    torch_s = best_of(lambda: torch.matmul(tq, tk.T, out=tout))
    topk_s = best_of(lambda: torch.topk(tout, k + 1, dim=1))
    part_s = best_of(lambda: np.argpartition(-out, k, axis=1)[:, :k], repeats=1)
    shape = f"{len(q)}x{len(keys)}"
    return [
        ("matmul numpy (BLAS)", shape, *numpy_s),
        ("matmul torch", shape, *torch_s),
        (f"select torch.topk k={k}", shape, *topk_s),
        (f"select np.argpartition k={k}", shape, *part_s),
    ]


def timed(label: str, shape: str, fn) -> tuple:
    return (label, shape, *_clock(fn))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--prefs", type=int, default=1_000_000)
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--block", type=int, nargs=2, default=[2048, 8192], metavar=("QUERIES", "KEYS"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--skip-both", action="store_true", help="leave out the two-direction pass")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    block = tuple(args.block)
    with threadpool_limits(limits=args.threads, user_api="blas"):
        wall, cpu = time.perf_counter(), time.process_time()
        prefs = random_unit(args.prefs, args.dim, args.seed)
        items = random_unit(args.items, args.dim, args.seed + 1)
        gen_s = (time.perf_counter() - wall, time.process_time() - cpu)
        print(
            f"{args.prefs} preferences x {args.items} items, {args.dim}-d float32 "
            f"({prefs.nbytes / 1024**3:.2f} GB of preferences), k={args.k}, block {block[0]}x{block[1]}, "
            f"{args.threads} thread(s), torch {torch.__version__}, numpy {np.__version__}"
        )
        print(f"{'stage':36} | {'shape':>18} | {'wall s':>8} | {'CPU s':>8} | {'peak RSS GB':>11} | goal")
        rows = [("generate vectors", f"{args.prefs + args.items}x{args.dim}", *gen_s)]
        rows += kernel_rows(items, prefs, block[0], block[1], args.k)
        _print(rows)
        square = f"{args.items}x{args.items}"
        _print(
            [
                timed(
                    "item->item top-1 (fine, Eq. 3)",
                    square,
                    lambda: topk_cosine(items, items, 1, block_size=block, exclude=np.arange(args.items)),
                )
            ]
        )
        _print(
            [
                timed(
                    "item->item bottom-1 (coarse, Eq. 3)",
                    square,
                    lambda: bottomk_cosine(items, items, 1, block_size=block, exclude=np.arange(args.items)),
                )
            ]
        )
        shape = f"{args.items}x{args.prefs}"
        _print(
            [
                timed(
                    f"item->prefs top-{args.k} (Eq. 4)",
                    shape,
                    lambda: topk_cosine(items, prefs, args.k, block_size=block),
                )
            ],
            goal=True,
        )
        if not args.skip_both:
            _print(
                [
                    timed(
                        "both: item->prefs + prefs->items",
                        shape,
                        lambda: topk_cosine_both(items, prefs, args.k, args.k, block_size=block),
                    )
                ]
            )


def _print(rows: list[tuple], goal: bool = False) -> None:
    for label, shape, wall, cpu in rows:
        verdict = (f"< {GOAL_S:.0f} s wall: {'met' if wall < GOAL_S else 'missed'}") if goal else ""
        print(f"{label:36} | {shape:>18} | {wall:8.2f} | {cpu:8.2f} | {peak_rss_gb():11.2f} | {verdict}", flush=True)


if __name__ == "__main__":
    main()
