"""Train LangPTune (or one of its ablations) and write a run folder with its test table.

    ray job submit --working-dir . -- python jobs/train_langptune.py \
        --data /abs/data/world --out /abs/runs/lpt variant=langptune outer_iterations=2 policy_loop.epochs=4

Runs in the job's process (policy and embedder on one worker; the Ray actor split is
still to come). Trailing key=value pairs override LangPTuneConfig
(steerrec.langptune.train), `--config` reads a YAML first. A rerun with the same --out
resumes after the last finished outer iteration. `--eval-sessions N` limits the test
sessions profiled (0: all).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from steerrec.cli import main
from steerrec.config import load
from steerrec.langptune.runs import train_and_evaluate
from steerrec.langptune.train import LangPTuneConfig


def run(args: argparse.Namespace) -> None:
    flags = {"data": str(Path(args.data).absolute()), "out": str(Path(args.out).absolute())}
    cfg = load(LangPTuneConfig, args.config, args.overrides, flags)
    print(json.dumps(train_and_evaluate(cfg, args.eval_sessions), indent=1))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="dataset folder from jobs/prepare_data.py")
    parser.add_argument("--out", required=True, help="run folder")
    parser.add_argument("--config", help="LangPTuneConfig YAML")
    parser.add_argument("--eval-sessions", type=int, default=0, help="test sessions to evaluate (0: all)")
    parser.add_argument("overrides", nargs="*", help="key=value overrides")
    main(run, parser)
