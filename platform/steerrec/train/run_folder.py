"""The run folder a training job leaves, and loading it back (evaluation, serving).

<out>/config.yaml              the model's config (Model.load(out) rebuilds it)
<out>/model.safetensors        the best epoch's weights (valid NDCG@10)
<out>/encoder/                 Mender-Tok only: the text encoder's HF config and tokenizer
<out>/semantic_ids.parquet     item_id, codes (list<int32>); row order = the model's item rows
<out>/items.parquet            item_id, title in the same row order (a copy: serving needs
                               nothing outside the folder; SASRec's item id k is row k - 1)
<out>/item_embeddings.parquet  Mender-Emb only: item_id, embedding, same row order
<out>/job.yaml                 the whole RecommenderJobConfig (embedder included)
<out>/metrics.json             per-epoch metrics, best epoch
<out>/run.json                 model name, git commit, package versions, seed, inputs + sha256
<out>/ray/                     Ray Train's checkpoints (re-running with the same out resumes)
"""

from __future__ import annotations

import json
import logging
import subprocess
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from steerrec.data import io, schema

logger = logging.getLogger(__name__)

RUN_FILE, JOB_FILE, METRICS_FILE = "run.json", "job.yaml", "metrics.json"
ITEMS_FILE, ITEM_EMBEDDINGS_FILE = "items.parquet", "item_embeddings.parquet"
PACKAGES = ("steerrec", "torch", "transformers", "ray", "numpy", "pyarrow", "safetensors")


def git_commit() -> str | None:
    """HEAD of the repository this package lives in, or None outside a checkout."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def _versions() -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def describe_input(path: str, manifest: bool = True) -> dict[str, Any]:
    """A folder (its manifest.json's sha256) or a file (its own sha256)."""
    target = f"{path}/{schema.MANIFEST_FILE}" if manifest else path
    try:
        digest = io.sha256(target)
    except (FileNotFoundError, OSError):
        digest = None
        logger.warning("%s: not found, run.json records no sha256 for it", target)
    return {"path": path, ("manifest_sha256" if manifest else "sha256"): digest}


def run_metadata(kind: str, seed: int, inputs: dict[str, dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {
        "kind": kind,
        **extra,
        "seed": seed,
        "inputs": inputs,
        "git_commit": git_commit(),
        "versions": _versions(),
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def write_run_folder(cfg: Any, prepared: Any, checkpoint: Path, summary: dict[str, Any]) -> None:
    """The best weights of `checkpoint` (steerrec.train.loop) and everything serving needs."""
    from safetensors.torch import load_model

    from steerrec.config import dump
    from steerrec.models import build_model
    from steerrec.train.loop import BEST

    out = Path(cfg.out)
    model = build_model(prepared.model, prepared.model_cfg)
    load_model(model, str(checkpoint / BEST))
    model.save(out)
    catalog = prepared.catalog
    ids = pa.array(catalog.item_ids, pa.string())
    if catalog.codes.shape[1]:
        codes = pa.array(catalog.codes.tolist(), pa.list_(pa.int32()))
        pq.write_table(
            pa.table({"item_id": ids, "codes": codes}, schema=schema.SEMANTIC_IDS), out / schema.SEMANTIC_IDS_FILE
        )
    pq.write_table(pa.table({"item_id": ids, "title": pa.array(catalog.titles, pa.string())}), out / ITEMS_FILE)
    if prepared.item_emb is not None:
        from steerrec.embed import vectors_to_arrow

        pq.write_table(
            pa.table({"item_id": ids, "embedding": vectors_to_arrow(prepared.item_emb)}), out / ITEM_EMBEDDINGS_FILE
        )
    dump(cfg, out / JOB_FILE)
    (out / METRICS_FILE).write_text(json.dumps(summary, indent=2, default=float))
    inputs = {"data": describe_input(cfg.data), "benchmark": describe_input(cfg.benchmark)}
    if cfg.semantic_ids:
        inputs["semantic_ids"] = describe_input(cfg.semantic_ids, manifest=False)
    info = run_metadata(
        "recommender",
        cfg.loop.seed,
        inputs,
        model=prepared.model,
        mixture=cfg.mixture,
        best_epoch=summary["best_epoch"],
        best_valid=summary["best"],
    )
    (out / RUN_FILE).write_text(json.dumps(info, indent=2))
    logger.info("run folder %s: %s, best epoch %d", out, prepared.model, summary["best_epoch"])


def load_run(run_dir: str | Path) -> tuple[Any, Any, dict[str, Any], np.ndarray | None]:
    """(model in eval mode, Catalog, run.json, item embeddings or None) of a run folder."""
    from steerrec.models import model_class
    from steerrec.train.batches import Catalog

    run_dir = Path(run_dir)
    info = json.loads((run_dir / RUN_FILE).read_text())
    model = model_class(info["model"]).load(run_dir)
    items = pq.read_table(run_dir / ITEMS_FILE)
    if (run_dir / schema.SEMANTIC_IDS_FILE).is_file():
        catalog = Catalog.from_tables(pq.read_table(run_dir / schema.SEMANTIC_IDS_FILE), items)
    else:
        catalog = Catalog(
            items.column("item_id").to_pylist(),
            items.column("title").to_pylist(),
            np.zeros((items.num_rows, 0), dtype=np.int64),
        )
    item_emb = None
    if (run_dir / ITEM_EMBEDDINGS_FILE).is_file():
        from steerrec.embed import arrow_to_vectors

        item_emb = arrow_to_vectors(pq.read_table(run_dir / ITEM_EMBEDDINGS_FILE).column("embedding"))
    return model, catalog, info, item_emb
