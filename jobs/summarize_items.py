"""Condense each item's reviews into at most 10 objective properties (Appendix C.1).

    ray job submit --working-dir . -- python jobs/summarize_items.py \
        --data /abs/data/world --out /abs/props/world --engine local --model default --limit-items 20

Resumable like jobs/approximate_preferences.py; trailing `key=value` pairs override
PropertiesConfig fields (`max_reviews=10`, `engine.local.concurrency=2`).
"""

from __future__ import annotations

import argparse
import dataclasses

from steerrec.cli import main
from steerrec.cluster import init_ray
from steerrec.config import load
from steerrec.llm.base import ENGINES
from steerrec.llm.presets import PRESETS, preset
from steerrec.preferences.properties import PropertiesConfig, summarize_items


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="dataset folder (jobs/prepare_data.py)")
    parser.add_argument("--out", required=True, help="item properties folder: local path or URI")
    parser.add_argument("--engine", choices=ENGINES, default="local")
    parser.add_argument("--model", default="default")
    parser.add_argument("--preset", choices=sorted(PRESETS))
    parser.add_argument("--limit-items", type=int, default=None)
    parser.add_argument("overrides", nargs="*", help="key=value overrides")
    return parser


def run(args: argparse.Namespace) -> None:
    engine = dataclasses.asdict(preset(args.preset)) if args.preset else {"engine": args.engine, "model": args.model}
    flags = {"data": args.data, "out": args.out, "limit_items": args.limit_items, "engine": engine}
    cfg = load(PropertiesConfig, None, args.overrides, flags)
    init_ray()
    stats = summarize_items(cfg)
    print(f"\n{cfg.out}  ({stats['engine']}: {stats['model']})")
    for key in ("requested", "skipped_done", "written", "failed", "attempts", "tokens_in", "tokens_out", "seconds"):
        print(f"  {key:<16} {stats[key]:>12,}")


if __name__ == "__main__":
    main(run, parser())
