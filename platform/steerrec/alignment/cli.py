"""What jobs/train_sft.py and jobs/align.py share: their common flags and their body.

Both read an AlignConfig from `--config`, then the job's own flags, then trailing
key=value overrides (steerrec.config.load), fit on Ray Train into `--out` (a rerun with the
same name and storage resumes from its last checkpoint) and, with `--eval-users N`, evaluate on the test users.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable
from pathlib import Path

from steerrec.alignment.config import AlignConfig
from steerrec.alignment.evaluate import evaluate_run
from steerrec.config import load
from steerrec.logging_utils import setup_logging


def add_run_args(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """--data, --out, --config, --storage, --eval-users and the trailing overrides."""
    parser.add_argument("--data", required=True, help="dataset folder from jobs/prepare_data.py")
    parser.add_argument("--out", required=True, help="run folder")
    parser.add_argument("--config", help="AlignConfig YAML")
    parser.add_argument("--storage", help="Ray Train storage (default: <out>/ray)")
    parser.add_argument("--eval-users", type=int, default=0, help="evaluate on this many test users (0: skip)")
    parser.add_argument("overrides", nargs="*", help="key=value overrides")
    return parser


def run_job(args: argparse.Namespace, fit: Callable, name: str, **flags: str) -> None:
    """Load the config (`flags` sit between --config and the overrides), fit, print, evaluate."""
    setup_logging()
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    out = str(Path(args.out).absolute())
    flags = {**flags, "data": str(Path(args.data).absolute()), "out": out}
    cfg = load(AlignConfig, args.config, args.overrides, flags)
    result = fit(cfg, args.storage or f"{out}/ray", name=name)
    print(json.dumps(result.metrics, indent=1))
    if args.eval_users:
        print(json.dumps(evaluate_run(out, args.eval_users, cfg.seed), indent=1))
