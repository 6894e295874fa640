"""Build the preference-discerning benchmark (five axes) from a dataset folder and preferences.

    ray job submit --working-dir . -- python jobs/build_benchmark.py \
        --data /abs/data/world --preferences /abs/data/world/truth.parquet --out /abs/bench/world \
        --embedder minilm --sentiment vader --seed 0

    ray job submit --working-dir . -- python jobs/build_benchmark.py \
        --data /abs/data/lcrec_scientific --no-preferences --out /abs/bench/lcrec_scientific

`--no-preferences` (data without reviews, e.g. LC-Rec) writes the recommendation axis
only, straight from sequences.parquet, with no statements; nothing is embedded.

Under `ray job submit` (RAY_ADDRESS is set) texts are embedded on Ray Data across the
cluster; as plain `python jobs/build_benchmark.py ...` they are embedded in this process
(`--embed-on ray|local` forces one). Paths are absolute or URIs. Trailing `key=value`
pairs override BenchmarkConfig fields (e.g. embedder.max_seq_length=128 candidates=32).
"""

from __future__ import annotations

import argparse
import os

from steerrec.benchmark.build import BenchmarkConfig, build_benchmark, summary_rows
from steerrec.cli import main
from steerrec.cluster import init_ray
from steerrec.config import load


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="dataset folder (jobs/prepare_data.py)")
    parser.add_argument("--preferences", default="", help="preferences folder or one Parquet file")
    parser.add_argument(
        "--no-preferences",
        action="store_true",
        help="no preferences: the recommendation axis only, from sequences.parquet",
    )
    parser.add_argument("--out", required=True, help="benchmark folder: local path or URI")
    parser.add_argument("--embedder", default="minilm", help="minilm, mpnet or a sentence-transformers name")
    parser.add_argument("--sentiment", default="vader", help="vader, rating or hf:MODEL")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--embed-on", choices=("auto", "ray", "local"), default="auto")
    parser.add_argument("overrides", nargs="*", help="key=value overrides of BenchmarkConfig")
    return parser


def run(args: argparse.Namespace) -> None:
    use_ray = not args.no_preferences and (
        args.embed_on == "ray" or (args.embed_on == "auto" and bool(os.environ.get("RAY_ADDRESS")))
    )
    flags = {
        "data": args.data,
        "preferences": args.preferences,
        "no_preferences": args.no_preferences,
        "out": args.out,
        "seed": args.seed,
        "embedder.model": args.embedder,
        "classifier.name": args.sentiment,
        "use_ray": use_ray,
    }
    cfg = load(BenchmarkConfig, None, args.overrides, flags)
    if cfg.use_ray:
        init_ray()
    manifest = build_benchmark(cfg)
    print(f"\n{cfg.out}")
    for name, value in summary_rows(manifest):
        print(f"  {name:<40} {value:>24}")


if __name__ == "__main__":
    main(run, parser())
