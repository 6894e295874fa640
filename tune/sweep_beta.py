"""Sweep beta for DPO, S-DPO and RecPO with ASHA on valid HR@1 (resumable).

    ray job submit --working-dir . -- python tune/sweep_beta.py \
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
    parser.add_argument("--name", default="beta")
    parser.add_argument("--config", help="AlignConfig YAML")
    parser.add_argument("--losses", nargs="+", default=["dpo", "sdpo", "recpo"])
    parser.add_argument("--betas", type=float, nargs="+", default=[0.1, 0.5, 1.0, 2.0])
    parser.add_argument("--cpus-per-trial", type=float, default=1)
    parser.add_argument("--max-concurrent", type=int, default=2)
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args(argv)
    setup_logging()
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    flags = {"sft_run": args.sft_run, "data": args.data}
    cfg = load(AlignConfig, args.config, [f"{k}={json.dumps(v)}" for k, v in flags.items()] + args.overrides)
    space = {"loss": tune.grid_search(args.losses), "beta": tune.grid_search(args.betas)}
    results = run_sweep(cfg, space, args.storage, args.name, args.cpus_per_trial, args.max_concurrent)
    table = summarise(results, ["loss", "beta"], Path(args.storage) / f"{args.name}.png", group="loss")
    print(table)
    return table


if __name__ == "__main__":
    main()
