"""Preference alignment of an SFT'd LLM recommender (DPO, S-DPO, SimPO, RecPO) on Ray Train.

    ray job submit --working-dir . -- python jobs/align.py --loss recpo \
        --sft-run /abs/runs/sft --data /abs/data/ml100k --out /abs/runs/recpo lam=2 margin=ratio

The SFT LoRA is merged into the base weights and a fresh LoRA is trained, so the
reference policy is the SFT model with the adapter disabled. Trailing key=value pairs
override AlignConfig (steerrec.alignment.train); a rerun resumes from the last checkpoint.
`--eval-users N` evaluates on the test users afterwards (results.json in the run folder).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from steerrec.alignment.evaluate import evaluate_run
from steerrec.alignment.train import LOSS_INPUTS, AlignConfig, fit_align
from steerrec.config import load
from steerrec.logging_utils import setup_logging


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loss", required=True, choices=sorted(LOSS_INPUTS))
    parser.add_argument("--sft-run", required=True, help="run folder of jobs/train_sft.py")
    parser.add_argument("--data", required=True, help="dataset folder from jobs/prepare_data.py")
    parser.add_argument("--out", required=True, help="run folder")
    parser.add_argument("--config", help="AlignConfig YAML")
    parser.add_argument("--storage", help="Ray Train storage (default: <out>/ray)")
    parser.add_argument("--eval-users", type=int, default=0, help="evaluate on this many test users (0: skip)")
    parser.add_argument("overrides", nargs="*", help="key=value overrides")
    args = parser.parse_args()
    setup_logging()
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    out = str(Path(args.out).absolute())
    flags = {"loss": args.loss, "sft_run": str(Path(args.sft_run).absolute()),
             "data": str(Path(args.data).absolute()), "out": out}
    cfg = load(AlignConfig, args.config, [f"{k}={json.dumps(v)}" for k, v in flags.items()] + args.overrides)
    result = fit_align(cfg, args.storage or f"{out}/ray", name=f"align-{args.loss}")
    print(json.dumps(result.metrics, indent=1))
    if args.eval_users:
        print(json.dumps(evaluate_run(out, args.eval_users, cfg.seed), indent=1))


if __name__ == "__main__":
    main()
