"""Supervised fine-tuning of an LLM recommender (next-item title) on Ray Train.

    ray job submit --working-dir . -- python jobs/train_sft.py \
        --data /abs/data/ml100k --out /abs/runs/sft model.source=hf model.name=Qwen/Qwen2-7B use_gpu=true

A tiny model trained from scratch (CPU): `full_finetune=true lr=1e-3`. Trailing key=value
pairs override AlignConfig (steerrec.alignment.train); `--config` reads a YAML first. The
run folder is written on worker 0 (local path or shared mount); a rerun resumes from its
last checkpoint. `--eval-users N` evaluates on the test users afterwards (results.json).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from steerrec.alignment.evaluate import evaluate_run
from steerrec.alignment.train import AlignConfig, fit_sft
from steerrec.config import load
from steerrec.logging_utils import setup_logging


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
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
    flags = {"data": str(Path(args.data).absolute()), "out": out}
    cfg = load(AlignConfig, args.config, [f"{k}={json.dumps(v)}" for k, v in flags.items()] + args.overrides)
    result = fit_sft(cfg, args.storage or f"{out}/ray", name="sft")
    print(json.dumps(result.metrics, indent=1))
    if args.eval_users:
        print(json.dumps(evaluate_run(out, args.eval_users, cfg.seed), indent=1))


if __name__ == "__main__":
    main()
