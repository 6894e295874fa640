"""The end-to-end pipeline: prepare data -> preferences -> benchmark -> semantic IDs ->
train -> evaluate, into one run directory, skipping stages whose outputs are complete.

    <out>/data/          dataset folder (jobs/prepare_data.py)
    <out>/preferences/   preferences folder (engine) ; the world's truth.parquet (truth); none (none)
    <out>/benchmark/     the five axes (jobs/build_benchmark.py)
    <out>/ids/           semantic IDs (jobs/train_semantic_ids.py)
    <out>/runs/<model>-s<seed>/   run folders (jobs/train_recommender.py)
    <out>/eval/<model>/  results.json + results.png over seeds (jobs/evaluate.py)
    <out>/summary.json   what each stage did, how long it took, the five-axis table

Each stage config is built (and checked) before anything runs, so a typo in the YAML
fails in a second, not after an hour of training.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from steerrec import run_folder as rf
from steerrec.config import from_dict

logger = logging.getLogger(__name__)

MODEL_ALIASES = {"mender-tok": "mender_tok", "mender-emb": "mender_emb"}


@dataclass
class PreferenceStage:
    source: str = "truth"  # truth: the world's true preferences; engine: approximate with an LLM;
    # none: no preferences (data without reviews, e.g. LC-Rec): the recommendation axis only
    limit_users: int | None = None  # engine only: the first N users (CPU engines are slow)
    granularity: str = "default"
    engine: dict[str, Any] = field(default_factory=dict)  # EngineConfig fields
    generation: dict[str, Any] = field(default_factory=dict)  # GenerationConfig fields

    def __post_init__(self) -> None:
        if self.source not in ("truth", "engine", "none"):
            raise ValueError(f"preferences.source must be 'truth', 'engine' or 'none', got {self.source!r}")


@dataclass
class PipelineConfig:
    out: str = ""  # the run directory
    seeds: list[int] = field(default_factory=lambda: [0])  # one run folder per model and seed
    models: list[str] = field(default_factory=lambda: ["mender_tok", "tiger", "sasrec"])
    data: dict[str, Any] = field(default_factory=lambda: {"format": "world"})  # PrepareConfig fields but out
    preferences: PreferenceStage = field(default_factory=PreferenceStage)
    benchmark: dict[str, Any] = field(default_factory=dict)  # BenchmarkConfig fields but paths
    semantic_ids: dict[str, Any] = field(default_factory=dict)  # SemanticIdJobConfig fields but paths
    train: dict[str, Any] = field(default_factory=dict)  # RecommenderJobConfig fields for every model
    train_per_model: dict[str, dict[str, Any]] = field(default_factory=dict)  # model -> more fields
    evaluate: dict[str, Any] = field(default_factory=dict)  # EvalConfig fields but runs/out

    def __post_init__(self) -> None:
        if not self.out:
            raise ValueError("out is required: the pipeline's run directory")
        self.models = [MODEL_ALIASES.get(m, m) for m in self.models]
        if self.preferences.source == "truth" and self.data.get("format") != "world":
            raise ValueError("preferences.source=truth needs data.format=world (only the world has a truth)")


@dataclass
class Stage:
    name: str
    output: Path
    done: Callable[[], bool]
    run: Callable[[], Any]


def stages(cfg: PipelineConfig) -> list[Stage]:
    """Every stage with its checked config; nothing runs here."""
    from steerrec.benchmark.build import BenchmarkConfig, build_benchmark
    from steerrec.data.io import is_complete
    from steerrec.data.prepare import PrepareConfig, prepare
    from steerrec.evaluation.report import EvalConfig, evaluate_runs
    from steerrec.train.recommender import RecommenderJobConfig, train_recommender
    from steerrec.train.semantic_ids import SemanticIdJobConfig, train_semantic_ids

    out = Path(cfg.out).absolute()
    data, bench, ids = out / "data", out / "benchmark", out / "ids"
    prep = from_dict(PrepareConfig, {**cfg.data, "out": str(data)}, "pipeline.data")
    prefs_path, prefs_stage = _preference_stage(cfg, data, out)
    no_prefs = {"preferences": "", "no_preferences": True} if prefs_path is None else {"preferences": str(prefs_path)}
    bench_cfg = from_dict(
        BenchmarkConfig, {**cfg.benchmark, "data": str(data), **no_prefs, "out": str(bench)}, "pipeline.benchmark"
    )
    ids_cfg = from_dict(
        SemanticIdJobConfig, {**cfg.semantic_ids, "data": str(data), "out": str(ids)}, "pipeline.semantic_ids"
    )
    result = [
        Stage("prepare", data, lambda: is_complete(data), lambda: prepare(prep)),
        prefs_stage,
        Stage("benchmark", bench, lambda: is_complete(bench), lambda: build_benchmark(bench_cfg)),
        Stage(
            "semantic_ids",
            ids,
            lambda: (ids / rf.SEMANTIC_IDS_FILE).exists() and (ids / rf.RUN_FILE).exists(),
            lambda: train_semantic_ids(ids_cfg),
        ),
    ]
    for model in cfg.models:
        runs = []
        for seed in cfg.seeds:
            run = out / "runs" / f"{model}-s{seed}"
            fields = {
                **cfg.train,
                **cfg.train_per_model.get(model, {}),
                "model": model,
                "data": str(data),
                "benchmark": str(bench),
                "out": str(run),
                "semantic_ids": "" if model == "sasrec" else str(ids / rf.SEMANTIC_IDS_FILE),
            }
            loop = dict(fields.get("loop", {}))
            fields["loop"] = {**loop, "seed": seed}
            job = from_dict(RecommenderJobConfig, fields, f"pipeline.train[{model}]")
            result.append(
                Stage(
                    f"train {model} s{seed}", run, _done_file(run / rf.RUN_FILE), lambda job=job: train_recommender(job)
                )
            )
            runs.append(str(run))
        ev = out / "eval" / model
        ev_cfg = from_dict(EvalConfig, {**cfg.evaluate, "runs": runs, "out": str(ev)}, f"pipeline.evaluate[{model}]")
        result.append(
            Stage(
                f"evaluate {model}", ev, _done_file(ev / rf.RESULTS_FILE), lambda ev_cfg=ev_cfg: evaluate_runs(ev_cfg)
            )
        )
    return result


def _preference_stage(cfg: PipelineConfig, data: Path, out: Path) -> tuple[Path | None, Stage]:
    """The preferences' path (None for source none) and the stage that writes them."""
    from steerrec.data.schema import TRUTH_FILE
    from steerrec.preferences.approximate import ApproximationConfig, approximate

    p = cfg.preferences
    if p.source == "none":
        return None, Stage("preferences (none)", data, lambda: True, lambda: None)
    if p.source == "truth":
        truth = data / TRUTH_FILE
        return truth, Stage("preferences (world truth)", truth, lambda: True, lambda: None)
    prefs = out / "preferences"
    approx = from_dict(
        ApproximationConfig,
        {
            "data": str(data),
            "out": str(prefs),
            "limit_users": p.limit_users,
            "engine": p.engine,
            "prompt": {"granularity": p.granularity},
            "generation": p.generation,
        },
        "pipeline.preferences",
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
