"""Evaluate run folders (one per seed) on the five axes; print a Table-1 shaped table.

    ray job submit --working-dir . --runtime-env-json '{"excludes": [".git"]}' -- \
        python jobs/evaluate.py --runs /abs/runs/tiger-s0 /abs/runs/tiger-s1 /abs/runs/tiger-s2 \
        --out /abs/runs/tiger-eval

Writes results.json (per run and mean/std over runs) and results.png (Recall@10 / m@10 per
axis) into --out (default: the run folder when there is one). The benchmark folder is the
one each run was trained on unless --benchmark says otherwise. Needs no Ray cluster.
"""

from __future__ import annotations

import argparse

from steerrec.cli import main
from steerrec.config import load
from steerrec.evaluation.report import EvalConfig, evaluate_runs, format_table


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", nargs="+", required=True, help="run folders, one per seed")
    parser.add_argument("--out", default="", help="folder for results.json and results.png")
    parser.add_argument("--benchmark", default="", help="benchmark folder (default: from run.json)")
    parser.add_argument("--split", default="test", choices=["train", "valid", "test"])
    parser.add_argument("overrides", nargs="*", help="key=value, e.g. beam_size=50 max_examples=1000")
    return parser


def run(args: argparse.Namespace) -> None:
    flags = {"runs": args.runs, "out": args.out, "benchmark": args.benchmark, "split": args.split}
    cfg = load(EvalConfig, None, args.overrides, flags)
    results = evaluate_runs(cfg)
    print()
    print(format_table(results))


if __name__ == "__main__":
    main(run, parser())
