"""Sweep beta for DPO, S-DPO and RecPO with ASHA on valid HR@1 (resumable).

    ray job submit --working-dir . -- python tune/sweep_beta.py \
        --sft-run /abs/runs/sft --data /abs/data/ml100k --storage /abs/sweeps epochs=3 lr=1e-3

Trailing key=value pairs override AlignConfig (steerrec.alignment.train). Rerunning the
same command resumes an interrupted sweep. Prints the results table; writes a PNG plot.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _sweep import run_sweep, summarise, sweep_config, sweep_parser

from ray import tune
from steerrec.cli import main


def parser() -> argparse.ArgumentParser:
    parser = sweep_parser(__doc__.splitlines()[0], "beta")
    parser.add_argument("--losses", nargs="+", default=["dpo", "sdpo", "recpo"])
    parser.add_argument("--betas", type=float, nargs="+", default=[0.1, 0.5, 1.0, 2.0])
    return parser


def run(args: argparse.Namespace) -> None:
    cfg = sweep_config(args)
    space = {"loss": tune.grid_search(args.losses), "beta": tune.grid_search(args.betas)}
    results = run_sweep(cfg, space, args.storage, args.name, args.cpus_per_trial, args.max_concurrent)
    table = summarise(results, ["loss", "beta"], Path(args.storage) / f"{args.name}.png", group="loss")
    print(table)


if __name__ == "__main__":
    main(run, parser())
