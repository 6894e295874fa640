"""Sweep LangPTune's profile length (langptune-profiles Table 3: 512 / 256 / 128 / 64) with Ray Tune.

    ray job submit --working-dir . -- python tune/sweep_profile_length.py \
        --data /abs/data/world --storage /abs/sweeps --lengths 64 128 256 512 outer_iterations=2

Each trial is one LangPTune run (steerrec.langptune.sweep.trial) with
policy.rollout.profile_length set; trailing key=value pairs override LangPTuneConfig for
every trial. Rerunning the same command resumes an interrupted sweep (Tuner.restore; each
trial resumes after its last finished outer iteration). Prints the table of test metrics
and writes <storage>/<name>.md and <name>.png (test NDCG@20 against the length).
"""

from __future__ import annotations

import argparse
import functools
import logging
import os
from pathlib import Path

from ray import tune
from steerrec.alignment.evaluate import results_table
from steerrec.cluster import init_ray
from steerrec.config import load, to_dict
from steerrec.langptune.sweep import trial
from steerrec.langptune.train import LangPTuneConfig
from steerrec.logging_utils import setup_logging

logger = logging.getLogger(__name__)
KEY = "policy.rollout.profile_length"
METRIC = "test_ndcg@20"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--storage", required=True, help="experiment folder parent (absolute)")
    parser.add_argument("--name", default="profile_length")
    parser.add_argument("--lengths", type=int, nargs="+", default=[64, 128, 256, 512])
    parser.add_argument("--eval-sessions", type=int, default=0, help="test sessions per trial (0: all)")
    parser.add_argument("--config", help="LangPTuneConfig YAML")
    parser.add_argument("--cpus-per-trial", type=float, default=2)
    parser.add_argument("--max-concurrent", type=int, default=1)
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    setup_logging()
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    storage = Path(args.storage).absolute()
    flags = {"data": str(Path(args.data).absolute()), "out": str(storage / f"{args.name}-runs" / "base")}
    cfg = load(LangPTuneConfig, args.config, args.overrides, flags)
    init_ray()
    fn = tune.with_resources(
        functools.partial(trial, report=tune.report, get_context=tune.get_context), {"cpu": args.cpus_per_trial}
    )
    path = storage / args.name
    if tune.Tuner.can_restore(str(path)):
        logger.info("restoring the sweep at %s", path)
        tuner = tune.Tuner.restore(str(path), trainable=fn, resume_errored=True)
    else:
        space = {
            "base": to_dict(cfg),
            "runs": str(storage / f"{args.name}-runs"),
            "eval_sessions": args.eval_sessions,
            KEY: tune.grid_search(sorted(args.lengths)),
        }
        tuner = tune.Tuner(
            fn,
            param_space=space,
            tune_config=tune.TuneConfig(metric=METRIC, mode="max", max_concurrent_trials=args.max_concurrent),
            run_config=tune.RunConfig(name=args.name, storage_path=str(storage)),
        )
    frame = tuner.fit().get_dataframe().sort_values("profile_length")
    columns = [METRIC, "test_mrr@20", "test_recall@20", "test_precision@20", "most_pop_ndcg@20", "random_ndcg@20"]
    # the standard error of the test NDCG, then (the world only) the true likes and dislikes named
    columns += [c for c in (f"{METRIC}_se", "truth_like_share", "truth_dislike_share") if c in frame]
    rows = {f"length {int(r['profile_length'])}": {c: float(r[c]) for c in columns} for _, r in frame.iterrows()}
    table = results_table(rows, columns)
    print(table)
    (storage / f"{args.name}.md").write_text(table + "\n")
    plot(frame, storage / f"{args.name}.png")


def plot(frame, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5))
    se = frame.get(f"{METRIC}_se", None)  # one standard error over the test sessions
    ax.errorbar(frame["profile_length"], frame[METRIC], yerr=se, marker="o", capsize=3)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("profile length (tokens)")
    ax.set_ylabel(METRIC)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    main()
