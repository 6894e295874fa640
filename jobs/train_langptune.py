"""Train LangPTune (or one of its ablations) and write a run folder with its test table.

    ray job submit --working-dir . -- python jobs/train_langptune.py \
        --data /abs/data/world --out /abs/runs/lpt variant=langptune outer_iterations=2 policy_loop.epochs=4 \
        ray.generators=2 ray.generator_gpus=1 ray.trainer_gpus=1

By default one Ray program (steerrec.langptune.ray_program): a trainer actor runs the
alternation and a group of `ray.generators` generator actors writes the embedder phase's
profiles, the trainer's LoRA handed to them after each policy phase (its seconds and
bytes in each iter_NN/done.json and results.json). `--local` runs it all in this process.
Trailing key=value pairs override LangPTuneConfig (steerrec.langptune.train), `--config`
reads a YAML first. A rerun with the same --out resumes after the last finished outer
iteration. `--eval-sessions N` limits the test sessions profiled (0: all).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from steerrec.cli import main
from steerrec.config import load
from steerrec.langptune.train import LangPTuneConfig


def run(args: argparse.Namespace) -> None:
    flags = {"data": str(Path(args.data).absolute()), "out": str(Path(args.out).absolute())}
    cfg = load(LangPTuneConfig, args.config, args.overrides, flags)
    if args.local:
        from steerrec.langptune.runs import train_and_evaluate

        results = train_and_evaluate(cfg, args.eval_sessions)
    else:
        from steerrec.cluster import init_ray
        from steerrec.langptune.ray_program import LangPTuneProgram

        init_ray()
        with LangPTuneProgram(cfg) as program:
            results = program.train_and_evaluate(args.eval_sessions)
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="dataset folder from jobs/prepare_data.py")
    parser.add_argument("--out", required=True, help="run folder")
    parser.add_argument("--config", help="LangPTuneConfig YAML")
    parser.add_argument("--eval-sessions", type=int, default=0, help="test sessions to evaluate (0: all)")
    parser.add_argument("--local", action="store_true", help="run in this process, no Ray")
    parser.add_argument("overrides", nargs="*", help="key=value overrides")
    main(run, parser)
