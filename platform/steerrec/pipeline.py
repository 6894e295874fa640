"""The end-to-end pipeline: prepare data -> preferences -> benchmark -> semantic IDs ->
train -> evaluate, into one run directory, skipping stages whose outputs are complete.

    <out>/data/          dataset folder (jobs/prepare_data.py)
    <out>/preferences/   preferences folder (engine) ; the world's truth.parquet (truth); none (none)
    <out>/benchmark/     the five axes (jobs/build_benchmark.py)
    <out>/ids/           semantic IDs (jobs/train_semantic_ids.py)
    <out>/runs/<model>-s<seed>/   run folders (jobs/train_recommender.py)
    <out>/eval/<model>/  results.json + results.png over seeds (jobs/evaluate.py)
    <out>/summary.json   what each stage did, how long it took, the five-axis table

`load_pipeline` builds every section as the stage's own config dataclass, with the paths
the pipeline owns filled from `out` first, so a typo or a bad value in any section fails
at load (before Ray starts), naming the file and the key's dotted path, not after an hour
of training.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from steerrec import run_folder as rf
from steerrec.benchmark.build import BenchmarkConfig
from steerrec.config import ConfigError, from_dict, read
from steerrec.data.prepare import PrepareConfig
from steerrec.data.schema import TRUTH_FILE
from steerrec.evaluation.report import EvalConfig
from steerrec.llm.base import EngineConfig
from steerrec.preferences.generate import GenerationConfig
from steerrec.preferences.prompts import PromptConfig
from steerrec.train.recommender import RecommenderJobConfig
from steerrec.train.semantic_ids import SemanticIdJobConfig

logger = logging.getLogger(__name__)

MODEL_ALIASES = {"mender-tok": "mender_tok", "mender-emb": "mender_emb"}


@dataclass
class PreferenceStage:
    source: str = "truth"  # truth: the world's true preferences; engine: approximate with an LLM;
    # none: no preferences (data without reviews, e.g. LC-Rec): the recommendation axis only
    limit_users: int | None = None  # engine only: the first N users (CPU engines are slow)
    granularity: str = "default"
    engine: EngineConfig = field(default_factory=EngineConfig)
    generation: GenerationConfig = field(default_factory=GenerationConfig)

    def __post_init__(self) -> None:
        if self.source not in ("truth", "engine", "none"):
            raise ValueError(f"preferences.source must be 'truth', 'engine' or 'none', got {self.source!r}")
        PromptConfig(granularity=self.granularity)  # checks the name


@dataclass
class PipelineConfig:
    """Every stage's config, checked when loaded. Build it with `load_pipeline`, which
    fills each section's paths (marked "filled" below) from `out` before the checks."""

    out: str = ""  # the run directory (absolute once loaded)
    seeds: list[int] = field(default_factory=lambda: [0])  # one run folder per model and seed
    models: list[str] = field(default_factory=lambda: ["mender_tok", "tiger", "sasrec"])
    data: PrepareConfig = field(default_factory=lambda: PrepareConfig(format="world", out="data"))  # out filled
    preferences: PreferenceStage = field(default_factory=PreferenceStage)
    benchmark: BenchmarkConfig = field(  # data, preferences/no_preferences, out filled
        default_factory=lambda: BenchmarkConfig(data="data", preferences="prefs", out="benchmark")
    )
    semantic_ids: SemanticIdJobConfig = field(  # data, out filled
        default_factory=lambda: SemanticIdJobConfig(data="data", out="ids")
    )
    # the fields every model shares (model, data, benchmark, semantic_ids, out filled: the
    # first model's); train_per_model.<model>: that model's config, the `train` section with
    # the given fields over it (top-level keys replace), paths filled the same way; each
    # seed's run gets its own out and loop.seed
    train: RecommenderJobConfig = field(
        default_factory=lambda: RecommenderJobConfig(data="data", benchmark="bench", semantic_ids="ids", out="run")
    )
    train_per_model: dict[str, RecommenderJobConfig] = field(default_factory=dict)
    evaluate: EvalConfig = field(default_factory=lambda: EvalConfig(runs=["run"], out="eval"))  # runs, out filled

    def __post_init__(self) -> None:
        if not self.out:
            raise ValueError("out is required: the pipeline's run directory")
        self.models = [MODEL_ALIASES.get(m, m) for m in self.models]
        missing = [m for m in self.models if m not in self.train_per_model]
        if missing:
            raise ValueError(f"train_per_model has no config for model(s) {missing}: build with load_pipeline")
        if self.preferences.source == "truth" and self.data.format != "world":
            raise ValueError("preferences.source=truth needs data.format=world (only the world has a truth)")


# the paths the pipeline sets in each section, relative to `out`
FILLED = {
    "data": ("out",),
    "benchmark": ("data", "preferences", "no_preferences", "out"),
    "semantic_ids": ("data", "out"),
    "train": ("model", "data", "benchmark", "semantic_ids", "out"),
    "evaluate": ("runs", "out"),
}


def load_pipeline(
    path: str | Path | None = None,
    overrides: Iterable[str] = (),
    flags: Mapping[str, Any] | None = None,
    root: str | Path | None = None,
) -> PipelineConfig:
    """The checked PipelineConfig from YAML, flags and overrides (steerrec.config.read).

    A relative `out` is taken under `root` (default: the working directory). Each
    section's paths are filled from `out` before its dataclass checks it, so an unknown
    key or a bad value anywhere fails here, naming the file and the key's dotted path.
    """
    data, source = read(path, overrides, flags)
    if not isinstance(data.get("out", ""), str) or not data.get("out"):
        raise ConfigError(f"{source}: out is required: the pipeline's run directory")
    data["out"] = str((Path(root) if root is not None else Path.cwd()) / data["out"])
    return from_dict(PipelineConfig, fill_paths(data, source), source)


def fill_paths(raw: dict[str, Any], source: str) -> dict[str, Any]:
    """`raw` with every section's paths set from raw["out"]; setting one in the file is an error."""
    raw = dict(raw)
    per_model = _check_not_given(raw, source)
    out = Path(raw["out"])
    data, prefs = str(out / "data"), _preferences_path(raw, out)
    raw["data"] = {"format": "world", **raw.get("data", {}), "out": data}
    no_prefs = {"preferences": "", "no_preferences": True} if prefs is None else {"preferences": prefs}
    raw["benchmark"] = {**raw.get("benchmark", {}), "data": data, **no_prefs, "out": str(out / "benchmark")}
    raw["semantic_ids"] = {**raw.get("semantic_ids", {}), "data": data, "out": str(out / "ids")}
    models = raw.get("models", PipelineConfig.__dataclass_fields__["models"].default_factory())
    if not isinstance(models, list):
        raise ConfigError(f"{source}: models must be a list, got {models!r}")
    names = list(dict.fromkeys([MODEL_ALIASES.get(m, m) for m in models if isinstance(m, str)] + list(per_model)))
    train = raw.get("train", {})
    raw["train"] = {**train, **_run_paths(out, names[0] if names else "tiger")}
    raw["train_per_model"] = {m: {**train, **(per_model.get(m) or {}), **_run_paths(out, m)} for m in names}
    raw["evaluate"] = {**raw.get("evaluate", {}), "runs": [str(out / "runs")], "out": str(out / "eval")}
    return raw


def _check_not_given(raw: dict[str, Any], source: str) -> dict[str, Any]:
    """Raise where a section is not a mapping or sets a path the pipeline fills; returns train_per_model."""
    per_model = raw.pop("train_per_model", None) or {}
    if not isinstance(per_model, dict):
        raise ConfigError(f"{source}: train_per_model must be a mapping of model -> fields, got {per_model!r}")
    sections = [(name, raw.get(name, {}), keys) for name, keys in FILLED.items()]
    sections += [(f"train_per_model.{m}", value, FILLED["train"]) for m, value in per_model.items()]
    for name, value, keys in sections:
        if not isinstance(value, dict):
            raise ConfigError(f"{source}: {name} must be a mapping, got {value!r}")
        given = sorted(k for k in keys if k in value)
        if given:
            raise ConfigError(f"{source}: {[f'{name}.{k}' for k in given]}: set by the pipeline from `out`")
    return per_model


def _run_paths(out: Path, model: str) -> dict[str, str]:
    return {
        "model": model,
        "data": str(out / "data"),
        "benchmark": str(out / "benchmark"),
        "semantic_ids": "" if model == "sasrec" else str(out / "ids" / "semantic_ids.parquet"),
        "out": str(out / "runs" / model),
    }


def _preferences_path(raw: dict[str, Any], out: Path) -> str | None:
    prefs = raw.get("preferences") or {}
    source = prefs.get("source", "truth") if isinstance(prefs, dict) else "truth"
    if source == "none":
        return None
    return str(out / "data" / TRUTH_FILE) if source == "truth" else str(out / "preferences")


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
    from steerrec.train.recommender import train_recommender
    from steerrec.train.semantic_ids import train_semantic_ids

    out = Path(cfg.out).absolute()
    data, bench, ids = Path(cfg.data.out), Path(cfg.benchmark.out), Path(cfg.semantic_ids.out)
    _, prefs_stage = _preference_stage(cfg, data, out)
    result = [
        Stage("prepare", data, lambda: is_complete(data), lambda: prepare(cfg.data)),
        prefs_stage,
        Stage("benchmark", bench, lambda: is_complete(bench), lambda: build_benchmark(cfg.benchmark)),
        Stage(
            "semantic_ids",
            ids,
            lambda: (ids / rf.SEMANTIC_IDS_FILE).exists() and (ids / rf.RUN_FILE).exists(),
            lambda: train_semantic_ids(cfg.semantic_ids),
        ),
    ]
    for model in cfg.models:
        runs = []
        for seed in cfg.seeds:
            run = out / "runs" / f"{model}-s{seed}"
            base = cfg.train_per_model[model]
            job = dataclasses.replace(base, out=str(run), loop=dataclasses.replace(base.loop, seed=seed))
            result.append(
                Stage(
                    f"train {model} s{seed}", run, _done_file(run / rf.RUN_FILE), lambda job=job: train_recommender(job)
                )
            )
            runs.append(str(run))
        ev = out / "eval" / model
        ev_cfg = dataclasses.replace(cfg.evaluate, runs=runs, out=str(ev))
        result.append(
            Stage(
                f"evaluate {model}", ev, _done_file(ev / rf.RESULTS_FILE), lambda ev_cfg=ev_cfg: evaluate_runs(ev_cfg)
            )
        )
    return result


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
