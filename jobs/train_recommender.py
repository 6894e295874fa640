"""Train TIGER, Mender-Tok, Mender-Emb or SASRec with Ray Train and write a run folder.

    ray job submit --working-dir . --runtime-env-json '{"excludes": [".git"]}' -- \
        python jobs/train_recommender.py --model tiger --data /abs/data/world --benchmark /abs/bench/world \
        --semantic-ids /abs/runs/ids/semantic_ids.parquet --out /abs/runs/tiger-s0 --seed 0 \
        scaling.num_workers=2 loop.epochs=50

`--mixture` picks the training data (recommendation, pos, neg, pos_neg, fine, coarse,
fine_coarse, all: Mender Sec. 4.3). Trailing `key=value` pairs override
RecommenderJobConfig fields (model_config.d_model=64, loop.lr=1e-3, scaling.use_gpu=true, ...).
Re-running with the same --out resumes from its last checkpoint (delete <out>/ray to restart).
"""

from __future__ import annotations

import argparse

from steerrec.cli import main
from steerrec.cluster import init_ray
from steerrec.config import load
from steerrec.train.recommender import RecommenderJobConfig, train_recommender

MODELS = {"tiger": "tiger", "mender-tok": "mender_tok", "mender-emb": "mender_emb", "sasrec": "sasrec"}


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, choices=sorted(MODELS))
    parser.add_argument("--data", required=True, help="dataset folder")
    parser.add_argument("--benchmark", required=True, help="benchmark folder (axes/)")
    parser.add_argument("--semantic-ids", default="", help="semantic_ids.parquet (not needed for sasrec)")
    parser.add_argument("--out", required=True, help="the run folder")
    parser.add_argument("--mixture", default="recommendation")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--config", help="YAML with RecommenderJobConfig fields")
    parser.add_argument("--local", action="store_true", help="run in this process, without Ray Train")
    parser.add_argument("overrides", nargs="*", help="key=value overrides")
    return parser


def run(args: argparse.Namespace) -> None:
    flags = {
        "model": MODELS[args.model],
        "data": args.data,
        "benchmark": args.benchmark,
        "semantic_ids": args.semantic_ids,
        "out": args.out,
        "mixture": args.mixture,
        "loop.seed": args.seed,
        "use_ray": not args.local,
    }
    cfg = load(RecommenderJobConfig, args.config, args.overrides, flags)
    if cfg.use_ray:
        init_ray()
    summary = train_recommender(cfg)
    print(f"\n{cfg.out}: best valid {cfg.loop.monitor} {summary['best']:.4f} at epoch {summary['best_epoch']}")
    for row in summary["history"]:  # epochs between rankings (loop.valid_every > 1) have the valid loss only
        key = next((k for k in (f"valid_{cfg.loop.monitor}", "valid_loss") if k in row), None)
        valid = f"  {key} {row[key]:.4f}" if key else ""
        print(f"  epoch {row['epoch']:>3}  loss {row['train_loss']:.4f}{valid}")


if __name__ == "__main__":
    main(run, parser())
