"""Run every stage in order from one YAML config, skipping stages whose outputs are complete.

    ray job submit --working-dir . -- python jobs/pipeline.py --config configs/demo.yaml out=/abs/runs/demo

prepare data -> approximate preferences (or the world's truth) -> build benchmark ->
semantic IDs -> train each model and seed -> evaluate; everything lands in `out`, with
summary.json and a printed five-axis table. Trailing `key=value` pairs override the
config (`seeds=[0,1,2]`, `train.loop.epochs=5`, `preferences.source=engine`).
"""

from __future__ import annotations

import argparse

from steerrec.cli import main
from steerrec.cluster import init_ray
from steerrec.pipeline import format_summary, load_pipeline, run_pipeline


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="pipeline YAML (configs/demo.yaml)")
    parser.add_argument("overrides", nargs="*", help="key=value overrides")
    return parser


def run(args: argparse.Namespace) -> None:
    cfg = load_pipeline(args.config, args.overrides)  # every section checked before Ray starts
    init_ray()
    summary = run_pipeline(cfg)
    print(f"\n{summary['out']} (preferences: {summary['preferences']})\n")
    print(format_summary(summary))


if __name__ == "__main__":
    main(run, parser())
