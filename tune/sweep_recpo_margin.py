"""Sweep RecPO's margin scale lambda x margin form with ASHA on valid HR@1 (resumable).

    ray job submit --working-dir . -- python tune/sweep_recpo_margin.py \
        --sft-run /abs/runs/sft --data /abs/data/ml100k --storage /abs/sweeps epochs=3 lr=1e-3

Trailing key=value pairs override AlignConfig (steerrec.alignment.train). Rerunning the
same command resumes an interrupted sweep. Prints the results table; writes a PNG plot.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from ray import tune  # noqa: E402

from _sweep import run_sweep, summarise  # noqa: E402
from steerrec.alignment.train import AlignConfig  # noqa: E402
from steerrec.config import load  # noqa: E402
from steerrec.logging_utils import setup_logging  # noqa: E402


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sft-run", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--storage", required=True, help="experiment folder parent (absolute)")
    parser.add_argument("--name", default="recpo_margin")
    parser.add_argument("--config", help="AlignConfig YAML")
    parser.add_argument("--lams", type=float, nargs="+", default=[0.5, 1.0, 1.5, 2.0])
    parser.add_argument("--margins", nargs="+", default=["ratio", "difference", "log_ratio"])
    parser.add_argument("--cpus-per-trial", type=float, default=1)
    parser.add_argument("--max-concurrent", type=int, default=2)
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args(argv)
    setup_logging()
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    flags = {"sft_run": args.sft_run, "data": args.data, "loss": "recpo"}
    cfg = load(AlignConfig, args.config, [f"{k}={json.dumps(v)}" for k, v in flags.items()] + args.overrides)
    space = {"lam": tune.grid_search(args.lams), "margin": tune.grid_search(args.margins)}
    results = run_sweep(cfg, space, args.storage, args.name, args.cpus_per_trial, args.max_concurrent)
    table = summarise(results, ["margin", "lam"], Path(args.storage) / f"{args.name}.png", group="margin")
    print(table)
    return table


if __name__ == "__main__":
    main()
