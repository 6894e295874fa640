"""The end-to-end pipeline: prepare data -> preferences -> benchmark -> semantic IDs ->
train -> evaluate, into one run directory, skipping stages whose outputs are complete.

    <out>/data/          dataset folder (jobs/prepare_data.py)
    <out>/preferences/   preferences folder (engine) ; the world's truth.parquet (truth); none (none)
    <out>/benchmark/     the five axes (jobs/build_benchmark.py)
    <out>/ids/           semantic IDs (jobs/train_semantic_ids.py)
    <out>/runs/<model>-s<seed>/   run folders (jobs/train_recommender.py; idgenrec: jobs/train_idgenrec.py)
    <out>/eval/<model>/  results.json + results.png over seeds (jobs/evaluate.py)
    <out>/summary.json   what each stage did, how long it took, the five-axis table

The config (every section checked at load, paths filled from `out`) lives in
steerrec.pipeline_config; `load_pipeline` and `PipelineConfig` are imported from there.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from steerrec import run_folder as rf
from steerrec.data.schema import TRUTH_FILE
from steerrec.pipeline_config import IDGENREC, NO_SEMANTIC_IDS, PipelineConfig, load_pipeline
from steerrec.preferences.prompts import PromptConfig

__all__ = ["PipelineConfig", "Stage", "format_summary", "load_pipeline", "run_pipeline", "stages"]

logger = logging.getLogger(__name__)


@dataclass
class Stage:
    name: str
    output: Path
    done: Callable[[], bool]
    run: Callable[[], Any]


def stages(cfg: PipelineConfig) -> list[Stage]:
    """Every stage with its checked config; nothing runs here."""
    from steerrec.benchmark.build import build_benchmark
    from steerrec.data.io import is_complete
    from steerrec.data.prepare import prepare
    from steerrec.evaluation.report import evaluate_runs
    from steerrec.train.semantic_ids import train_semantic_ids

    out = Path(cfg.out).absolute()
    data, bench, ids = Path(cfg.data.out), Path(cfg.benchmark.out), Path(cfg.semantic_ids.out)
    _, prefs_stage = _preference_stage(cfg, data, out)
    result = [
        Stage("prepare", data, lambda: is_complete(data), lambda: prepare(cfg.data)),
        prefs_stage,
        Stage("benchmark", bench, lambda: is_complete(bench), lambda: build_benchmark(cfg.benchmark)),
    ]
    if any(m not in NO_SEMANTIC_IDS for m in cfg.models):  # SASRec needs none, IDGenRec makes textual ones
        result.append(
            Stage(
                "semantic_ids",
                ids,
                lambda: (ids / rf.SEMANTIC_IDS_FILE).exists() and (ids / rf.RUN_FILE).exists(),
                lambda: train_semantic_ids(cfg.semantic_ids),
            )
        )
    for model in cfg.models:
        runs = []
        for seed in cfg.seeds:
            run = out / "runs" / f"{model}-s{seed}"
            train = _train_run(cfg, model, seed, run)
            result.append(Stage(f"train {model} s{seed}", run, _done_file(run / rf.RUN_FILE), train))
            runs.append(str(run))
        ev = out / "eval" / model
        ev_cfg = dataclasses.replace(cfg.evaluate, runs=runs, out=str(ev))
        result.append(
            Stage(
                f"evaluate {model}", ev, _done_file(ev / rf.RESULTS_FILE), lambda ev_cfg=ev_cfg: evaluate_runs(ev_cfg)
            )
        )
    return result


def _train_run(cfg: PipelineConfig, model: str, seed: int, run: Path) -> Callable[[], Any]:
    """The call that trains `model` with `seed` into the run folder `run`."""
    from steerrec.train.idgenrec_job import run_idgenrec
    from steerrec.train.recommender import train_recommender

    if model == IDGENREC:
        base = cfg.idgenrec
        train = dataclasses.replace(base.train, loop=dataclasses.replace(base.train.loop, seed=seed))
        job = dataclasses.replace(base, out=str(run), train=train)
        return lambda: run_idgenrec(job)
    base = cfg.train_per_model[model]
    job = dataclasses.replace(base, out=str(run), loop=dataclasses.replace(base.loop, seed=seed))
    return lambda: train_recommender(job)


def _preference_stage(cfg: PipelineConfig, data: Path, out: Path) -> tuple[Path | None, Stage]:
    """The preferences' path (None for source none) and the stage that writes them."""
    from steerrec.preferences.approximate import ApproximationConfig, approximate

    p = cfg.preferences
    if p.source == "none":
        return None, Stage("preferences (none)", data, lambda: True, lambda: None)
    if p.source == "truth":
        truth = data / TRUTH_FILE
        return truth, Stage("preferences (world truth)", truth, lambda: True, lambda: None)
    prefs = out / "preferences"
    approx = ApproximationConfig(
        data=str(data),
        out=str(prefs),
        limit_users=p.limit_users,
        engine=p.engine,
        prompt=PromptConfig(granularity=p.granularity),
        generation=p.generation,
    )
    # resumable: a rerun skips written keys, so "done" means the last run ended with no failures
    return prefs, Stage("preferences", prefs, _done_manifest(prefs / "manifest.json"), lambda: approximate(approx))


def _done_file(path: Path) -> Callable[[], bool]:
    return lambda: path.exists()


def _done_manifest(path: Path) -> Callable[[], bool]:
    def done() -> bool:
        if not path.exists():
            return False
        stats = json.loads(path.read_text())
        return stats.get("failed", 1) == 0 and stats.get("written", 0) + stats.get("skipped_done", 0) == stats.get(
            "requested", -1
        )

    return done


def run_pipeline(cfg: PipelineConfig) -> dict[str, Any]:
    """Run every stage not yet complete, in order; write and return the summary."""
    plan = stages(cfg)
    out = Path(cfg.out).absolute()
    out.mkdir(parents=True, exist_ok=True)
    log = []
    for i, stage in enumerate(plan, 1):
        if stage.done():
            logger.info("[%d/%d] %s: complete, skipped (%s)", i, len(plan), stage.name, stage.output)
            log.append({"stage": stage.name, "status": "skipped", "seconds": 0.0, "output": str(stage.output)})
            continue
        logger.info("[%d/%d] %s -> %s", i, len(plan), stage.name, stage.output)
        start = time.perf_counter()
        stage.run()
        seconds = round(time.perf_counter() - start, 1)
        logger.info("[%d/%d] %s: done in %.1f s", i, len(plan), stage.name, seconds)
        log.append({"stage": stage.name, "status": "ran", "seconds": seconds, "output": str(stage.output)})
    results = {m: json.loads((out / "eval" / m / rf.RESULTS_FILE).read_text()) for m in cfg.models}
    summary = {
        "out": str(out),
        "preferences": cfg.preferences.source,
        "stages": log,
        "results": {m: r["summary"] for m, r in results.items()},
    }
    rf.write_json(out / "summary.json", summary)
    return summary


def format_summary(summary: dict[str, Any]) -> str:
    """The stage log and a model x axis table (Recall@10 / NDCG@10; m@10 for sentiment)."""
    lines = [f"{'stage':<32} {'status':<8} {'seconds':>8}"]
    lines += [f"{s['stage']:<32} {s['status']:<8} {s['seconds']:>8.1f}" for s in summary["stages"]]
    axes = sorted({a for r in summary["results"].values() for a in r})
    lines += ["", f"{'model':<12}" + "".join(f"{a:>22}" for a in axes)]
    for model, axes_scores in summary["results"].items():
        cells = []
        for axis in axes:
            stats = axes_scores.get(axis, {})
            keys = ["m@10"] if "m@10" in stats else ["recall@10", "ndcg@10"]
            cells.append(" / ".join(f"{stats[k]['mean']:.4f}" for k in keys if k in stats) or "-")
        lines.append(f"{model:<12}" + "".join(f"{c:>22}" for c in cells))
    return "\n".join(lines)
