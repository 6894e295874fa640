"""Sweep beta for DPO, S-DPO and RecPO with ASHA on valid HR@1 (resumable).

    ray job submit --working-dir . -- python tune/sweep_beta.py \
        --sft-run /abs/runs/sft --data /abs/data/ml100k --storage /abs/sweeps epochs=3 lr=1e-3

Each loss keeps its beta in its own section (loss.<name>.beta), so each loss is one
experiment (<name>-<loss>) gridding its loss.<loss>.beta. Trailing key=value pairs override
AlignConfig (steerrec.alignment.config). Rerunning the same command resumes an interrupted
sweep. Prints one results table per loss; writes a PNG plot per loss.
"""

from __future__ import annotations

import argparse
from pathlib import Path

# Python puts this script's folder, tune/, first on the import path
from _sweep import run_sweep, summarise, sweep_config, sweep_parser

from ray import tune
from steerrec.cli import main


def parser() -> argparse.ArgumentParser:
    parser = sweep_parser(__doc__.splitlines()[0], "beta")
    parser.add_argument("--losses", nargs="+", default=["dpo", "sdpo", "recpo"])
    parser.add_argument("--betas", type=float, nargs="+", default=[0.1, 0.5, 1.0, 2.0])
    return parser


def run(args: argparse.Namespace) -> None:
    tables = []
    for loss in args.losses:  # beta lives in each loss's own section: one experiment per loss
        cfg = sweep_config(args, **{"loss.name": loss})
        key, name = f"loss.{loss}.beta", f"{args.name}-{loss}"
        space = {key: tune.grid_search(args.betas)}
        results = run_sweep(cfg, space, args.storage, name, args.cpus_per_trial, args.max_concurrent)
        tables.append(f"{loss}\n\n" + summarise(results, [key], Path(args.storage) / f"{name}.png"))
    table = "\n\n".join(tables)
    print(table)


if __name__ == "__main__":
    main(run, parser())
