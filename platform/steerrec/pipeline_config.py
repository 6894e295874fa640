"""The pipeline's config: every stage's section, checked at load (steerrec.pipeline runs it).

`load_pipeline` builds every section as the stage's own config dataclass, with the paths
the pipeline owns filled from `out` first, so a typo or a bad value in any section fails
at load (before Ray starts), naming the file and the key's dotted path, not after an hour
of training.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from steerrec.benchmark.build import BenchmarkConfig
from steerrec.config import ConfigError, from_dict, read
from steerrec.data.prepare import PrepareConfig
from steerrec.data.schema import TRUTH_FILE
from steerrec.evaluation.report import EvalConfig
from steerrec.llm.base import EngineConfig
from steerrec.preferences.generate import GenerationConfig
from steerrec.preferences.prompts import PromptConfig
from steerrec.train.idgenrec_job import IDGenRecJobConfig
from steerrec.train.recommender import RecommenderJobConfig
from steerrec.train.semantic_ids import SemanticIdJobConfig

MODEL_ALIASES = {"mender-tok": "mender_tok", "mender-emb": "mender_emb"}
IDGENREC = "idgenrec"  # trained by its own job (the `idgenrec` section), not train_per_model
NO_SEMANTIC_IDS = (IDGENREC, "sasrec")  # models trained without the semantic-IDs stage


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
    # model idgenrec's job (data, benchmark, out filled; use_ray and scaling default to the
    # train section's); each seed's run gets its own out and train.loop.seed
    idgenrec: IDGenRecJobConfig = field(
        default_factory=lambda: IDGenRecJobConfig(data="data", benchmark="bench", out="run")
    )
    evaluate: EvalConfig = field(default_factory=lambda: EvalConfig(runs=["run"], out="eval"))  # runs, out filled

    def __post_init__(self) -> None:
        if not self.out:
            raise ValueError("out is required: the pipeline's run directory")
        self.models = [MODEL_ALIASES.get(m, m) for m in self.models]
        missing = [m for m in self.models if m not in self.train_per_model and m != IDGENREC]
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
    "idgenrec": ("data", "benchmark", "out"),
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
    names = [m for m in names if m != IDGENREC]
    train = raw.get("train", {})
    raw["train"] = {**train, **_run_paths(out, names[0] if names else "tiger")}
    raw["train_per_model"] = {m: {**train, **(per_model.get(m) or {}), **_run_paths(out, m)} for m in names}
    shared = {k: train[k] for k in ("use_ray", "scaling") if k in train}
    paths = {"data": data, "benchmark": str(out / "benchmark"), "out": str(out / "runs" / IDGENREC)}
    raw["idgenrec"] = {**shared, **raw.get("idgenrec", {}), **paths}
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
        "semantic_ids": "" if model in NO_SEMANTIC_IDS else str(out / "ids" / "semantic_ids.parquet"),
        "out": str(out / "runs" / model),
    }


def _preferences_path(raw: dict[str, Any], out: Path) -> str | None:
    prefs = raw.get("preferences") or {}
    source = prefs.get("source", "truth") if isinstance(prefs, dict) else "truth"
    if source == "none":
        return None
    return str(out / "data" / TRUTH_FILE) if source == "truth" else str(out / "preferences")
