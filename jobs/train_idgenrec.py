"""Train IDGenRec (textual IDs + a T5 recommender, alternate rounds) and write a run folder.

    ray job submit --working-dir . --runtime-env-json '{"excludes": [".git"]}' -- \
        python jobs/train_idgenrec.py --data /abs/data/world --benchmark /abs/bench/world \
        --out /abs/runs/idgenrec-s0 --seed 0 train.rounds=3 train.rec_epochs=10

Each phase runs on Ray Train (steerrec.train.loop's fit_ray; scaling.num_workers=2 for data
parallel); `--local` runs them in this process instead (fit_local). Trailing `key=value`
pairs override IDGenRecJobConfig fields (train.model.recommender.d_model=128,
train.ids.n_groups=5, train.loop.batch_size=32, ...);
`train.strategy=rec_only` or `id_only` runs the paper's Table 5 ablations. Re-running with the same --out
resumes: finished phases train nothing, the current one continues from its last checkpoint
(delete <out>/phases to restart).
In the pipeline it is model `idgenrec` (section `idgenrec:` of the pipeline YAML).
"""

from __future__ import annotations

import argparse

from steerrec.cli import main
from steerrec.cluster import init_ray
from steerrec.config import load
from steerrec.train.idgenrec_job import IDGenRecJobConfig, run_idgenrec


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="dataset folder")
    parser.add_argument("--benchmark", required=True, help="benchmark folder (axes/recommendation)")
    parser.add_argument("--out", required=True, help="the run folder")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--config", help="YAML with IDGenRecJobConfig fields")
    parser.add_argument("--local", action="store_true", help="run in this process, without Ray Train")
    parser.add_argument("overrides", nargs="*", help="key=value overrides")
    return parser


def run(args: argparse.Namespace) -> None:
    flags = {"data": args.data, "benchmark": args.benchmark, "out": args.out, "train.loop.seed": args.seed}
    cfg = load(IDGenRecJobConfig, args.config, args.overrides, flags | {"use_ray": not args.local})
    if cfg.use_ray:
        init_ray()
    summary = run_idgenrec(cfg)
    final = summary["final"]
    if final["rec"]:
        last = summary["phases"][final["rec"]]
        print(f"\n{cfg.out}: best valid ndcg@10 {last['best']:.4f} at epoch {last['best_epoch']} of {final['rec']}")
    else:
        print(f"\n{cfg.out}: {cfg.train.strategy}: no recommender phase (it keeps its initial weights)")
    for r, report in summary["ids"].items():
        print(f"  IDs after round {r}: {report}")
        print(f"    e.g. {summary['examples'][r][:5]}")


if __name__ == "__main__":
    main(run, parser())
