"""What the alignment sweeps share: the Tune trainable, ASHA, restore, the table and plot.

The trainable is the library's `steerrec.alignment.sweep.trial`, given Tune's report,
Checkpoint, get_checkpoint and get_context (a functools.partial, pickled by reference: no
pickling of this script by value): each epoch reports valid HR@1 and a checkpoint, ASHA
stops weak trials on valid_hr1, and an interrupted sweep resumes (`Tuner.restore`) when
its experiment folder exists. A sweep's space maps dotted AlignConfig keys
("loss.recpo.lam") to tune.grid_search values.
"""

from __future__ import annotations

import argparse
import functools
import logging
import os
from pathlib import Path
from typing import Any

from ray.tune.schedulers import ASHAScheduler

from ray import tune
from steerrec.alignment.config import AlignConfig
from steerrec.alignment.evaluate import results_table
from steerrec.alignment.sweep import trial
from steerrec.cluster import init_ray
from steerrec.config import load, to_dict
from steerrec.logging_utils import setup_logging

logger = logging.getLogger(__name__)
METRIC = "valid_hr1"


def sweep_parser(description: str, name: str) -> argparse.ArgumentParser:
    """The arguments every sweep takes; a sweep adds the values it grids over."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--sft-run", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--storage", required=True, help="experiment folder parent (absolute)")
    parser.add_argument("--name", default=name)
    parser.add_argument("--config", help="AlignConfig YAML")
    parser.add_argument("--cpus-per-trial", type=float, default=1)
    parser.add_argument("--max-concurrent", type=int, default=2)
    parser.add_argument("overrides", nargs="*")
    return parser


def sweep_config(args: argparse.Namespace, **fixed: Any) -> AlignConfig:
    """The AlignConfig of a sweep's trials: its YAML, the flags, `fixed` fields, overrides."""
    setup_logging()
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    flags = {"sft_run": args.sft_run, "data": args.data, **fixed}
    return load(AlignConfig, args.config, args.overrides, flags)


def trainable() -> Any:
    """The library's trial bound to Tune's functions (the library itself never imports ray.tune)."""
    return functools.partial(
        trial,
        report=tune.report,
        checkpoint_cls=tune.Checkpoint,
        get_checkpoint=tune.get_checkpoint,
        get_context=tune.get_context,
    )


def run_sweep(
    cfg: AlignConfig,
    space: dict[str, Any],
    storage: str | Path,
    name: str,
    cpus_per_trial: float = 1,
    max_concurrent: int = 2,
    grace_period: int = 1,
) -> Any:
    """Grid `space` (dotted AlignConfig key -> tune.grid_search) over `cfg` with ASHA; resumable."""
    init_ray()  # RAY_ADDRESS's cluster or a local Ray (never a stale current-cluster file)
    storage = Path(storage).absolute()
    path = storage / name
    fn = tune.with_resources(trainable(), {"cpu": cpus_per_trial})
    if tune.Tuner.can_restore(str(path)):
        logger.info("restoring the sweep at %s", path)
        tuner = tune.Tuner.restore(str(path), trainable=fn, resume_errored=True)
    else:
        asha = ASHAScheduler(
            time_attr="training_iteration",
            max_t=cfg.epochs,
            grace_period=min(grace_period, cfg.epochs),
            reduction_factor=2,
        )
        tuner = tune.Tuner(
            fn,
            param_space={"base": to_dict(cfg), "runs": str(storage / f"{name}-runs"), **space},
            tune_config=tune.TuneConfig(
                metric=METRIC, mode="max", scheduler=asha, max_concurrent_trials=max_concurrent
            ),
            run_config=tune.RunConfig(
                name=name,
                storage_path=str(storage),
                failure_config=tune.FailureConfig(max_failures=cfg.max_failures),  # a trial resumes its checkpoint
            ),
        )
    return tuner.fit()


def summarise(results, params: list[str], plot_path: str | Path | None = None, group: str | None = None) -> str:
    """Markdown table of every trial's last and best valid HR@1; optional line plot."""
    frame = results.get_dataframe(filter_metric=METRIC, filter_mode="max")
    rows: dict[str, dict[str, Any]] = {}
    for _, r in frame.sort_values([f"config/{p}" for p in params]).iterrows():
        key = ", ".join(f"{p}={r[f'config/{p}']}" for p in params)
        rows[key] = {
            "best_valid_hr1": float(r[METRIC]),
            "valid_ratio": float(r.get("valid_ratio", float("nan"))),
            "best_epoch": int(r["training_iteration"]),
            "examples_per_s": float(r.get("examples_per_s", float("nan"))),
        }
    if plot_path is not None:
        _plot(frame, params, Path(plot_path), group)
    return results_table(rows, ("best_valid_hr1", "valid_ratio", "best_epoch", "examples_per_s"))


def _plot(frame, params: list[str], path: Path, group: str | None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = next(p for p in params if p != group)
    fig, ax = plt.subplots(figsize=(5, 3.5))
    groups = frame.groupby(f"config/{group}") if group else [("all", frame)]
    for label, part in groups:
        part = part.sort_values(f"config/{x}")
        ax.plot(part[f"config/{x}"], part[METRIC], marker="o", label=str(label))
    ax.set_xlabel(x)
    ax.set_ylabel(f"best {METRIC}")
    ax.legend(fontsize="small")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
