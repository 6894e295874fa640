"""Sweep RecPO's margin scale lambda x margin form with ASHA on valid HR@1 (resumable).

    ray job submit --working-dir . -- python tune/sweep_recpo_margin.py \
        --sft-run /abs/runs/sft --data /abs/data/ml100k --storage /abs/sweeps epochs=3 lr=1e-3

Trailing key=value pairs override AlignConfig (steerrec.alignment.config). Rerunning the
same command resumes an interrupted sweep. Prints the results table; writes a PNG plot.
"""

from __future__ import annotations

import argparse
from pathlib import Path

# Python puts this script's folder, tune/, first on the import path
from _sweep import run_sweep, summarise, sweep_config, sweep_parser

from ray import tune
from steerrec.cli import main


def parser() -> argparse.ArgumentParser:
    parser = sweep_parser(__doc__.splitlines()[0], "recpo_margin")
    parser.add_argument("--lams", type=float, nargs="+", default=[0.5, 1.0, 1.5, 2.0])
    parser.add_argument("--margins", nargs="+", default=["ratio", "difference", "log_ratio"])
    return parser


def run(args: argparse.Namespace) -> None:
    cfg = sweep_config(args, **{"loss.name": "recpo"})
    space = {"loss.recpo.lam": tune.grid_search(args.lams), "loss.recpo.margin": tune.grid_search(args.margins)}
    results = run_sweep(cfg, space, args.storage, args.name, args.cpus_per_trial, args.max_concurrent)
    plot = Path(args.storage) / f"{args.name}.png"
    table = summarise(results, ["loss.recpo.margin", "loss.recpo.lam"], plot, group="loss.recpo.margin")
    print(table)


if __name__ == "__main__":
    main(run, parser())
