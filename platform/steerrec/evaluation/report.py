"""Evaluate run folders on the five axes, over seeds: results.json, a Table-1 text, a plot.

    results = evaluate_runs(EvalConfig(runs=["runs/tiger-s0", "runs/tiger-s1"], out="runs/tiger"))
    print(format_table(results))

Recall@5/10 and NDCG@5/10 on recommendation, fine, coarse and consolidation; m@5/10 on
sentiment (each pair ranked under its positive and its negative preference). Each run
is one seed; the summary is the mean and sample std over runs (steerrec.metrics.summarize).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from steerrec.benchmark.axes import AXES, SENTIMENT, axis_file
from steerrec.data.schema import SchemaError
from steerrec.metrics import summarize
from steerrec.run_folder import (
    JOB_FILE,
    PLOT_FILE,
    RESULTS_FILE,
    RUN_FILE,
    RunFolderError,
    RunInfo,
    load_recommender,
    read_run_info,
    write_json,
)
from steerrec.steering import Steerer, SteeringConfig

logger = logging.getLogger(__name__)

COLUMNS = ("recall@5", "ndcg@5", "recall@10", "ndcg@10")


@dataclass
class EvalConfig:
    runs: list[str] = field(default_factory=list)  # run folders, one per seed
    benchmark: str = ""  # default: the benchmark each run was trained on (run.json)
    out: str = ""  # where results.json and results.png go; default: the run folder when there is one
    split: str = "test"
    axes: list[str] = field(default_factory=lambda: list(AXES))
    beam_size: int = 20
    batch_size: int = 64
    max_examples: int = 0  # per axis, the first rows; 0 = all
    plot: bool = True
    # steering.enabled: true steers each example by its preferences as the served recommender
    # does (avoided items left out, liked ones raised); off (the default) ranks by the model
    # alone, comparable to the papers and to earlier runs
    steering: SteeringConfig = field(default_factory=lambda: SteeringConfig(enabled=False))

    def __post_init__(self) -> None:
        if not self.runs:
            raise ValueError("runs: name at least one run folder")
        if not self.out and len(self.runs) > 1:
            raise ValueError("out is required when evaluating several runs")
        unknown = [a for a in self.axes if a not in AXES]
        if unknown:
            raise ValueError(f"axes: unknown {unknown}; known: {list(AXES)}")
        if self.beam_size < 10:
            raise ValueError(f"beam_size must be >= 10 (metrics go to @10), got {self.beam_size}")


def evaluate_run(
    run_dir: str,
    cfg: EvalConfig,
    embed: Callable[[list[str]], np.ndarray] | None = None,
    steerers: dict[tuple[str, ...], Steerer] | None = None,
) -> dict[str, dict[str, float]]:
    """{axis: {metric: value}} for one run folder; axes the benchmark lacks (one built
    without preferences has the recommendation axis only) or without rows are left out.
    `steerers`: Steerers by catalog text, shared by the runs of one evaluation (a Steerer
    embeds the catalog and fits its polarity read-out once)."""
    from steerrec.config import load
    from steerrec.train import batches as B
    from steerrec.train.ranking import axis_scores, build_trie, rank_encoded, sentiment_scores
    from steerrec.train.recommender import RecommenderJobConfig, embedder

    run = load_recommender(run_dir)
    model, item_emb, name = run.model, run.item_emb, run.model_name
    catalog = B.Catalog(run.item_ids, [run.titles[i] or i for i in run.item_ids], run.codes)
    bench = cfg.benchmark or _benchmark_of(run.info, run_dir)
    if name == "mender_emb" and embed is None:
        embed = embedder(load(RecommenderJobConfig, Path(run_dir) / JOB_FILE).embedder)
    trie = build_trie(model, catalog.codes)
    steerer = None
    axes = [axis for axis in cfg.axes if B.has_axis(bench, axis, cfg.split)]
    if not axes:
        raise SchemaError(f"{bench}: no {cfg.split} split of any of the axes {cfg.axes}")
    if len(axes) < len(cfg.axes):
        logger.warning(
            "%s: no %s split of axes %s, evaluated %s only",
            bench,
            cfg.split,
            [a for a in cfg.axes if a not in axes],
            axes,
        )
    scores: dict[str, dict[str, float]] = {}
    for axis in axes:
        source = f"{bench}/{axis_file(axis, cfg.split)}"
        ex = B.axis_examples(B.read_axis(bench, axis, cfg.split), axis, catalog, source)
        if cfg.max_examples and len(ex) > cfg.max_examples:
            ex = ex.take(np.arange(cfg.max_examples))
        if len(ex) == 0:
            logger.warning("%s: no rows, axis %s left out", source, axis)
            continue
        texts = B.TextTable.build([ex], embed, item_emb.shape[1]) if name == "mender_emb" else None
        encoded = B.encode(name, model.config, ex, catalog, item_emb, texts, getattr(model, "tokenizer", None))
        if cfg.steering.enabled and any(ex.preferences):
            steerer = steerer or _steerer({} if steerers is None else steerers, run, cfg.steering)
            encoded["item_bias"] = steerer.item_bias([steerer.read(p) for p in ex.preferences])
        ranked, _ = rank_encoded(model, encoded, trie, cfg.beam_size, 10, cfg.batch_size)
        if axis == SENTIMENT:
            scores[axis] = sentiment_scores(ranked, ex.target, ex.negative, ex.pair_id)
        else:
            scores[axis] = axis_scores(ranked, ex.target)
        logger.info("%s %s: %s", Path(run_dir).name, axis, scores[axis])
    return scores


def evaluate_runs(cfg: EvalConfig, embed: Callable[[list[str]], np.ndarray] | None = None) -> dict[str, Any]:
    """Evaluate every run, summarize over them, write results.json (and the plot) to the out folder."""
    steerers: dict[tuple[str, ...], Steerer] = {}
    per_run = [evaluate_run(run, cfg, embed, steerers) for run in cfg.runs]
    summary = {}
    for axis in cfg.axes:
        found = [r[axis] for r in per_run if axis in r]
        if len(found) == len(per_run):
            summary[axis] = summarize(found)
    models = sorted({read_run_info(r, kinds=("recommender",)).details["model"] for r in cfg.runs})
    results = {"runs": cfg.runs, "models": models, "split": cfg.split, "per_run": per_run, "summary": summary}
    out = Path(cfg.out or cfg.runs[0])
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / RESULTS_FILE, _finite(results))
    if cfg.plot:
        plot(results, out / PLOT_FILE)
    return results


def _steerer(cache: dict[tuple[str, ...], Steerer], run: Any, cfg: SteeringConfig) -> Steerer:
    key = tuple(run.texts[i] for i in run.item_ids)
    if key not in cache:
        cache[key] = Steerer(list(key), cfg)
    return cache[key]


def _benchmark_of(info: RunInfo, run_dir: str) -> str:
    """The benchmark folder a recommender run was trained on (run.json's inputs.benchmark.path)."""
    path = (info.inputs.get("benchmark") or {}).get("path")
    if not isinstance(path, str) or not path:
        raise RunFolderError(f"{Path(run_dir) / RUN_FILE}: field 'inputs.benchmark.path' missing; pass --benchmark")
    return path


def _finite(value: Any) -> Any:
    """NaN (the std of one run) as null, so that results.json is valid JSON."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return None if isinstance(value, float) and math.isnan(value) else value


def format_table(results: dict[str, Any]) -> str:
    """Axes as rows, Recall@5 NDCG@5 Recall@10 NDCG@10 as columns (m@5 - m@10 - for sentiment),
    each "mean ± std" over runs, like the paper's Table 1 (std as in its Table 6)."""
    header = f"{'axis':<16}" + "".join(f"{c:>18}" for c in ("Recall@5", "NDCG@5", "Recall@10", "NDCG@10"))
    lines = [f"{', '.join(results['models'])}: {len(results['runs'])} run(s), {results['split']} split", header]
    for axis, metrics in results["summary"].items():
        keys = ("m@5", None, "m@10", None) if axis == SENTIMENT else COLUMNS
        cells = [_cell(metrics[k]) if k else "-" for k in keys]
        lines.append(f"{axis:<16}" + "".join(f"{c:>18}" for c in cells))
    return "\n".join(lines)


def _cell(stat: dict[str, float]) -> str:
    std = stat["std"]
    return f"{stat['mean']:.4f}" + ("" if std is None or math.isnan(std) else f" ± {std:.4f}")


def plot(results: dict[str, Any], path: str | Path) -> None:
    """Bars of Recall@10 (m@10 for sentiment) per axis with the std over runs as error bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    axes = list(results["summary"])
    keys = ["m@10" if a == SENTIMENT else "recall@10" for a in axes]
    means = [results["summary"][a][k]["mean"] for a, k in zip(axes, keys)]
    stds = [
        0.0 if math.isnan(results["summary"][a][k]["std"]) else results["summary"][a][k]["std"]
        for a, k in zip(axes, keys)
    ]
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.bar(axes, means, yerr=stds, capsize=4, color="#4c72b0")
    ax.set_ylabel("Recall@10 (m@10 for sentiment)")
    ax.set_title(f"{', '.join(results['models'])}: {len(results['runs'])} run(s), {results['split']}")
    fig.tight_layout()
    fig.savefig(str(path), format="png", dpi=120)
    plt.close(fig)
