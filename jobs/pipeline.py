"""Run every stage in order from one YAML config, skipping stages whose outputs are complete.

    ray job submit --working-dir . -- python jobs/pipeline.py --config configs/demo.yaml out=/abs/runs/demo

prepare data -> approximate preferences (or the world's truth) -> build benchmark ->
semantic IDs -> train each model and seed -> evaluate; everything lands in `out`, with
summary.json and a printed five-axis table. Trailing `key=value` pairs override the
config (`seeds=[0,1,2]`, `train.loop.epochs=5`, `preferences.source=engine`).
"""

from __future__ import annotations

import argparse

from steerrec.config import load
from steerrec.logging_utils import setup_logging
from steerrec.pipeline import PipelineConfig, format_summary, run_pipeline


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="pipeline YAML (configs/demo.yaml)")
    parser.add_argument("overrides", nargs="*", help="key=value overrides")
    args = parser.parse_args()
    setup_logging()
    cfg = load(PipelineConfig, args.config, args.overrides)
    summary = run_pipeline(cfg)
    print(f"\n{summary['out']} (preferences: {summary['preferences']})\n")
    print(format_summary(summary))


if __name__ == "__main__":
    main()
