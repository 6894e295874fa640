"""The RQ-VAE semantic-ID job: one Ray Train worker trains the RQ-VAE and assigns the codes.

    quality = train_semantic_ids(SemanticIdJobConfig(data="data/world", out="runs/ids"))

Writes into `out`: semantic_ids.parquet (schema.SEMANTIC_IDS; L RQ-VAE levels plus the
collision code, rows in items.parquet order), rqvae/ (rqvae.safetensors +
rqvae_config.json), quality.json (steerrec.ids.semantic_ids.quality_report),
metrics.json (one row per epoch) and run.json. Item embeddings come from a Parquet file
(`embeddings`: item_id, embedding) or are computed from the items' rendered text.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from steerrec.benchmark.embed import EmbedderConfig
from steerrec.data import io, schema
from steerrec.train.loop import RayScaling, fit_ray

logger = logging.getLogger(__name__)

RQVAE_DIR = "rqvae"


@dataclass
class SemanticIdJobConfig:
    data: str = ""  # dataset folder (items.parquet, manifest.json)
    out: str = ""  # the ids folder
    embeddings: str = ""  # optional Parquet (item_id, embedding); default: embed the items' text
    embedder: EmbedderConfig = field(default_factory=EmbedderConfig)
    rqvae: dict[str, Any] = field(default_factory=dict)  # RQVAEConfig fields; input_dim from the embeddings
    collision_limit: int = 0  # largest collision code + 1 allowed; 0: no limit
    use_ray: bool = True  # False: the same steps in this process
    scaling: RayScaling = field(default_factory=RayScaling)

    def __post_init__(self) -> None:
        if not (self.data and self.out):
            raise ValueError(f"data and out are required, got data={self.data!r} out={self.out!r}")
        if self.scaling.num_workers != 1:
            raise ValueError(
                f"scaling.num_workers must be 1 (the RQ-VAE trains on one worker), got {self.scaling.num_workers}"
            )
        if self.collision_limit < 0:
            raise ValueError(f"collision_limit must be >= 0, got {self.collision_limit}")


def load_embeddings(cfg: SemanticIdJobConfig) -> tuple[list[str], np.ndarray]:
    """Item ids in items.parquet order and their embeddings [n, d]."""
    items = io.read_table(f"{cfg.data}/{schema.ITEMS_FILE}")
    ids = items.column("item_id").to_pylist()
    if not cfg.embeddings:
        from steerrec.benchmark.embed import embed_texts
        from steerrec.data.text import render_items

        return ids, embed_texts([t or i for t, i in zip(render_items(items), ids)], cfg.embedder)
    from steerrec.benchmark.embed import arrow_to_vectors

    table = io.read_table(cfg.embeddings)
    row = {item: r for r, item in enumerate(table.column("item_id").to_pylist())}
    missing = [i for i in ids if i not in row]
    if missing:
        raise ValueError(f"{cfg.embeddings}: no embedding for item {missing[0]!r} ({len(missing)} missing)")
    vectors = arrow_to_vectors(table.column("embedding"))
    return ids, vectors[np.array([row[i] for i in ids], dtype=np.int64)]


def fit_rqvae(
    embeddings: np.ndarray,
    rqvae: dict[str, Any],
    collision_limit: int,
    directory: Path,
    report: Callable[[dict], None] | None = None,
    device: Any = "cpu",
) -> dict[str, Any]:
    """Train, assign codes (+ collision code), save the RQ-VAE into `directory`; codes, quality, epochs."""
    from steerrec.ids.rqvae import RQVAEConfig, save_rqvae
    from steerrec.ids.semantic_ids import add_collision_code, assign_codes, quality_report, train_rqvae

    cfg = RQVAEConfig(**rqvae)
    epochs: list[dict] = []

    def on_epoch(row: dict) -> None:
        epochs.append(row)
        if report is not None:
            report(row)

    model = train_rqvae(embeddings, cfg, report=on_epoch, device=device, progress=False)
    codes = add_collision_code(assign_codes(model, embeddings), collision_limit or None)
    save_rqvae(model, directory)
    return {"codes": codes, "quality": quality_report(model, embeddings, codes), "epochs": epochs}


def _train_fn(config: dict[str, Any]) -> dict[str, Any]:
    import ray.train
    import ray.train.torch
    import torch

    import ray

    torch.set_num_threads(config["threads"])
    embeddings = ray.get(config["embeddings"])
    with tempfile.TemporaryDirectory(prefix="steerrec-rqvae-") as tmp:
        out = fit_rqvae(
            embeddings,
            config["rqvae"],
            config["collision_limit"],
            Path(tmp),
            lambda row: ray.train.report(row),
            ray.train.torch.get_device(),
        )
        ray.train.report(out["quality"], checkpoint=ray.train.Checkpoint.from_directory(tmp))
    return out


def train_semantic_ids(cfg: SemanticIdJobConfig) -> dict[str, Any]:
    """Run the job and write the ids folder; returns the quality report."""
    from steerrec import run_folder as rf
    from steerrec.ids.semantic_ids import semantic_ids_table

    ids, embeddings = load_embeddings(cfg)
    rqvae = {"input_dim": int(embeddings.shape[1])} | dict(cfg.rqvae)
    out = Path(cfg.out).absolute()
    out.mkdir(parents=True, exist_ok=True)
    if cfg.use_ray:
        import ray

        config = {
            "embeddings": ray.put(embeddings),
            "rqvae": rqvae,
            "collision_limit": cfg.collision_limit,
            "threads": cfg.scaling.cpus_per_worker,
        }
        result = fit_ray(_train_fn, config, cfg.scaling, str(out / "ray"), out.name)
        found = result.return_value
        shutil.rmtree(out / RQVAE_DIR, ignore_errors=True)
        result.checkpoint.to_directory(str(out / RQVAE_DIR))
    else:
        found = fit_rqvae(embeddings, rqvae, cfg.collision_limit, out / RQVAE_DIR)
    import pyarrow.parquet as pq

    pq.write_table(semantic_ids_table(ids, found["codes"]), out / schema.SEMANTIC_IDS_FILE)
    rf.write_json(out / rf.QUALITY_FILE, found["quality"])
    rf.write_json(out / rf.METRICS_FILE, found["epochs"])
    inputs = {"data": rf.describe_input(cfg.data)}
    if cfg.embeddings:
        inputs["embeddings"] = rf.describe_input(cfg.embeddings, manifest=False)
    info = rf.new_run_info(
        "semantic_ids",
        int(rqvae.get("seed", 0)),
        inputs,
        rqvae=rqvae,
        embedder=None if cfg.embeddings else cfg.embedder.model,
    )
    rf.write_run_info(out, info)
    logger.info("semantic IDs for %d items in %s: %s", len(ids), out, found["quality"])
    return found["quality"]
