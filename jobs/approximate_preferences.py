"""Approximate user preferences with an LLM: P_u^(t) for every user and position.

    ray job submit --working-dir . -- python jobs/approximate_preferences.py \
        --data /abs/data/world --out /abs/prefs/world --engine local --model default --limit-users 20

    # at scale: Llama-3-70B-Instruct on vLLM GPU actors (cluster.yaml's GPU workers)
    ray job submit --working-dir . -- python jobs/approximate_preferences.py \
        --data s3://bucket/data/beauty --out s3://bucket/prefs/beauty --preset llama3-70b-instruct

Resumable: a rerun skips (user_id, t) keys already written. Trailing `key=value` pairs
override ApproximationConfig fields (`engine.local.concurrency=2`, `generation.max_retries=3`).
"""

from __future__ import annotations

import argparse
import dataclasses

from steerrec.cli import main
from steerrec.cluster import init_ray
from steerrec.config import load
from steerrec.llm.base import ENGINES
from steerrec.llm.presets import PRESETS, preset
from steerrec.preferences.approximate import ApproximationConfig, approximate
from steerrec.preferences.prompts import GRANULARITIES


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="dataset folder (jobs/prepare_data.py)")
    parser.add_argument("--out", required=True, help="preferences folder: local path or URI")
    parser.add_argument("--engine", choices=ENGINES, default="local")
    parser.add_argument("--model", default="default", help="model name or path ('default': the local Qwen 0.5B GGUF)")
    parser.add_argument(
        "--preset", choices=sorted(PRESETS), help="a named engine configuration (overrides --engine/--model)"
    )
    parser.add_argument("--granularity", choices=GRANULARITIES, default="default")
    parser.add_argument("--limit-users", type=int, default=None)
    parser.add_argument("overrides", nargs="*", help="key=value overrides")
    return parser


def run(args: argparse.Namespace) -> None:
    engine = dataclasses.asdict(preset(args.preset)) if args.preset else {"engine": args.engine, "model": args.model}
    flags = {
        "data": args.data,
        "out": args.out,
        "limit_users": args.limit_users,
        "engine": engine,
        "prompt.granularity": args.granularity,
    }
    cfg = load(ApproximationConfig, None, args.overrides, flags)
    init_ray()
    stats = approximate(cfg)
    print(f"\n{cfg.out}  ({stats['engine']}: {stats['model']}, {stats['variant']})")
    for key in ("requested", "skipped_done", "written", "failed", "attempts", "tokens_in", "tokens_out", "seconds"):
        print(f"  {key:<16} {stats[key]:>12,}")
    if stats["seconds"]:
        rate = stats["attempts"] / stats["seconds"]
        print(
            f"  {'prompts/s':<16} {rate:>12.2f}\n  {'tokens out/s':<16} {stats['tokens_out'] / stats['seconds']:>12.1f}"
        )


if __name__ == "__main__":
    main(run, parser())
