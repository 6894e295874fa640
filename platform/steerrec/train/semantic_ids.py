"""The RQ-VAE semantic-ID job: the RQ-VAE trains as a `Task` of steerrec.train.loop, then codes are assigned.

    quality = train_semantic_ids(SemanticIdJobConfig(data="data/world", out="runs/ids"))

The loop gives the job what every trainer has: Ray Train with FailureConfig and resumption
from the latest checkpoint (safetensors + JSON), a progress bar, and the best epoch kept
by the validation loss on all items (mode "min"). Dead codes are re-seeded at the start of
each epoch from the previous epoch's code usage (`RQVAETask.on_epoch_start`).

Writes into `out`: semantic_ids.parquet (schema.SEMANTIC_IDS; L RQ-VAE levels plus the
collision code, rows in items.parquet order), rqvae/ (rqvae.safetensors +
rqvae_config.json), quality.json (steerrec.ids.semantic_ids.quality_report),
metrics.json (one row per epoch), run.json, and ray/ (Ray Train's checkpoints). Item
embeddings come from a Parquet file (`embeddings`: item_id, embedding) or are computed
from the items' rendered text.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from steerrec.data import io, schema
from steerrec.embed import EmbedderConfig
from steerrec.ids.rqvae import RQVAEConfig
from steerrec.train.loop import LoopConfig, RayScaling, fit_local, fit_ray, make_train_fn

logger = logging.getLogger(__name__)

RQVAE_DIR = "rqvae"
MONITOR = "loss"  # the RQ-VAE objective (reconstruction + quantization) on all items, eval mode


@dataclass
class SemanticIdJobConfig:
    data: str = ""  # dataset folder (items.parquet, manifest.json)
    out: str = ""  # the ids folder
    embeddings: str = ""  # optional Parquet (item_id, embedding); default: embed the items' text
    embedder: EmbedderConfig = field(default_factory=EmbedderConfig)
    rqvae: RQVAEConfig = field(default_factory=RQVAEConfig)  # input_dim is replaced by the embeddings' dimension
    collision_limit: int = 0  # largest collision code + 1 allowed; 0: no limit
    use_ray: bool = True  # False: the same loop in this process (fit_local)
    scaling: RayScaling = field(default_factory=RayScaling)
    progress: bool = True  # a progress bar over each epoch's batches
    checkpoint_every: int = 10  # epochs between checkpoints: a failure loses at most this many epochs
    fail_at_epoch: int = 0  # tests only: the worker exits once at the start of this epoch (loop.fail_at_epoch)
    fail_marker: str = ""  # the file that makes that failure happen once

    def __post_init__(self) -> None:
        if not (self.data and self.out):
            raise ValueError(f"data and out are required, got data={self.data!r} out={self.out!r}")
        if self.scaling.num_workers != 1:
            raise ValueError(
                f"scaling.num_workers must be 1 (the RQ-VAE trains on one worker), got {self.scaling.num_workers}"
            )
        if self.collision_limit < 0:
            raise ValueError(f"collision_limit must be >= 0, got {self.collision_limit}")
        self.loop_config()  # checks checkpoint_every, fail_at_epoch, fail_marker

    def loop_config(self) -> LoopConfig:
        """The loop settings the RQ-VAE config implies: every epoch runs (no early stop, no clipping)."""
        r = self.rqvae
        return LoopConfig(
            epochs=r.epochs,
            batch_size=r.batch_size,
            lr=r.lr,
            weight_decay=r.weight_decay,
            grad_clip=0.0,
            patience=0,
            monitor=MONITOR,
            mode="min",
            seed=r.seed,
            checkpoint_every=self.checkpoint_every,
            num_threads=self.scaling.cpus_per_worker,
            progress=self.progress,
            fail_at_epoch=self.fail_at_epoch,
            fail_marker=self.fail_marker,
        )


class RQVAETask:
    """The RQ-VAE as a steerrec.train.loop Task on raw item embeddings [n, input_dim].

    Batches are a shuffle of all items per epoch (generator seeded by seed and epoch, so a
    resumed run shuffles as an uninterrupted one would); validation is the loss terms and
    the prefix collisions on all items; `on_epoch_start` re-seeds the codes the previous
    epoch never chose (after a resume, the codes no item is assigned to, counted in eval mode).
    """

    def __init__(self, embeddings: np.ndarray, cfg: RQVAEConfig) -> None:
        import torch

        from steerrec.ids.semantic_ids import check_embeddings

        self.cfg = cfg
        self.data = torch.from_numpy(check_embeddings(embeddings, cfg.input_dim))
        self.usage: Any = None  # [L, K] codes chosen during the current epoch (train mode)

    def _generator(self, epoch: int) -> Any:
        import torch

        return torch.Generator().manual_seed(self.cfg.seed * 100_003 + epoch)

    def build_model(self) -> Any:
        """Standardizer fitted on all items, codebooks from k-means on a random batch (cfg.kmeans_init)."""
        import torch

        from steerrec.ids.kmeans import init_codebooks
        from steerrec.ids.rqvae import RQVAE

        model = RQVAE(self.cfg)
        model.fit_standardizer(self.data)
        if self.cfg.kmeans_init:
            first = torch.randperm(self.data.shape[0], generator=self._generator(0))[: self.cfg.batch_size]
            init_codebooks(model, self.data[first], self.cfg.seed, self.cfg.kmeans_iters)
        return model

    def train_batches(self, epoch: int, rank: int, world_size: int) -> Iterator[dict[str, Any]]:
        import torch

        order = torch.randperm(self.data.shape[0], generator=self._generator(epoch))
        self.usage = torch.zeros(self.cfg.n_levels, self.cfg.codebook_size, dtype=torch.long)
        for start in range(0, self.data.shape[0], self.cfg.batch_size):
            yield {"x": self.data[order[start : start + self.cfg.batch_size]]}

    def loss(self, model: Any, batch: dict[str, Any]) -> Any:
        from steerrec.ids.semantic_ids import count_usage

        out = model(batch["x"].to(_device(model)))
        self.usage += count_usage(out.codes.detach(), self.cfg.codebook_size).cpu()
        return out.loss

    def validate(self, model: Any, rank: int, world_size: int) -> dict[str, float]:
        """Sums over all items of loss, recon, quant, and items sharing their L codes ("collisions")."""
        from steerrec.ids.semantic_ids import prefix_collisions

        sums = {"loss": 0.0, "recon": 0.0, "quant": 0.0}
        codes = []
        for start in range(0, self.data.shape[0], 4096):
            batch = self.data[start : start + 4096].to(_device(model))
            out = model(batch)
            for name, value in zip(("loss", "recon", "quant"), out[:3]):
                sums[name] += float(value) * batch.shape[0]
            codes.append(out.codes.cpu().numpy())
        collisions, _ = prefix_collisions(np.concatenate(codes))
        return sums | {"collisions": float(collisions), "count": float(self.data.shape[0])}

    def on_epoch_start(self, model: Any, optimizer: Any, epoch: int) -> dict[str, int]:
        """Move the codes unused in the previous epoch onto random residuals (not before epoch 1)."""
        import torch

        from steerrec.ids.kmeans import reseed_dead_codes

        if epoch == 1 or not self.cfg.reseed_dead_codes:
            return {}
        usage, generator = self.usage, self._generator(-epoch)
        model.eval()
        with torch.no_grad():
            if usage is None:  # resumed: the previous epoch's usage died with its worker
                logger.info("epoch %d: resumed, dead codes counted on all items in eval mode", epoch)
                usage = _eval_usage(model, self.data, self.cfg.codebook_size)
            pick = torch.randperm(self.data.shape[0], generator=generator)[: self.cfg.batch_size]
            residuals = model.quantize(self.data[pick].to(_device(model))).residuals
        model.train()
        moved = reseed_dead_codes(model, usage.to(_device(model)), residuals, generator, optimizer)
        return {f"reseeded_{i + 1}": m for i, m in enumerate(moved)}


def _device(model: Any) -> Any:
    return next(model.parameters()).device


def _eval_usage(model: Any, data: Any, codebook_size: int) -> Any:
    from steerrec.ids.semantic_ids import count_usage

    codes = model.quantize(data.to(_device(model))).codes
    return count_usage(codes, codebook_size).cpu()


def load_embeddings(cfg: SemanticIdJobConfig) -> tuple[list[str], np.ndarray]:
    """Item ids in items.parquet order and their embeddings [n, d]."""
    items = io.read_table(f"{cfg.data}/{schema.ITEMS_FILE}")
    ids = items.column("item_id").to_pylist()
    if not cfg.embeddings:
        from steerrec.data.text import render_items
        from steerrec.embed import embed_texts

        return ids, embed_texts([t or i for t, i in zip(render_items(items), ids)], cfg.embedder)
    from steerrec.embed import arrow_to_vectors

    table = io.read_table(cfg.embeddings)
    row = {item: r for r, item in enumerate(table.column("item_id").to_pylist())}
    missing = [i for i in ids if i not in row]
    if missing:
        raise ValueError(f"{cfg.embeddings}: no embedding for item {missing[0]!r} ({len(missing)} missing)")
    vectors = arrow_to_vectors(table.column("embedding"))
    return ids, vectors[np.array([row[i] for i in ids], dtype=np.int64)]


def _build_task(config: dict[str, Any]) -> RQVAETask:
    import ray

    embeddings = config["embeddings"]
    embeddings = ray.get(embeddings) if isinstance(embeddings, ray.ObjectRef) else embeddings
    return RQVAETask(embeddings, RQVAEConfig(**config["rqvae"]))


def _fit(cfg: SemanticIdJobConfig, embeddings: np.ndarray, out: Path) -> tuple[Any, dict[str, Any]]:
    """Train on Ray Train (or locally); (the best epoch's RQ-VAE in eval mode, the loop's summary)."""
    from safetensors.torch import load_model

    from steerrec.ids.rqvae import RQVAE
    from steerrec.train.loop import BEST

    loop = cfg.loop_config()
    if cfg.use_ray:
        import ray

        config = {
            "loop": dataclasses.asdict(loop),
            "rqvae": dataclasses.asdict(cfg.rqvae),
            "embeddings": ray.put(embeddings),
        }
        result = fit_ray(make_train_fn(_build_task), config, cfg.scaling, str(out / "ray"), out.name)
        summary, checkpoint = result.return_value, Path(result.checkpoint.to_directory())
    else:
        summary, checkpoint = fit_local(RQVAETask(embeddings, cfg.rqvae), loop, out / "checkpoints")
    model = RQVAE(cfg.rqvae)
    load_model(model, str(checkpoint / BEST))
    return model.eval(), summary


def with_input_dim(cfg: SemanticIdJobConfig, dim: int) -> SemanticIdJobConfig:
    """cfg with rqvae.input_dim set to the embeddings' dimension (logged when it changes)."""
    if cfg.rqvae.input_dim != dim:
        logger.info("rqvae.input_dim %d -> %d (the embeddings' dimension)", cfg.rqvae.input_dim, dim)
    return dataclasses.replace(cfg, rqvae=dataclasses.replace(cfg.rqvae, input_dim=dim))


def train_semantic_ids(cfg: SemanticIdJobConfig) -> dict[str, Any]:
    """Run the job and write the ids folder; returns the quality report."""
    import pyarrow.parquet as pq

    from steerrec import run_folder as rf
    from steerrec.ids.rqvae import save_rqvae
    from steerrec.ids.semantic_ids import add_collision_code, assign_codes, quality_report, semantic_ids_table

    ids, embeddings = load_embeddings(cfg)
    cfg = with_input_dim(cfg, int(embeddings.shape[1]))
    out = Path(cfg.out).absolute()
    out.mkdir(parents=True, exist_ok=True)
    model, summary = _fit(cfg, embeddings, out)
    codes = add_collision_code(assign_codes(model, embeddings), cfg.collision_limit or None)
    quality = quality_report(model, embeddings, codes)
    shutil.rmtree(out / RQVAE_DIR, ignore_errors=True)
    save_rqvae(model, out / RQVAE_DIR)
    pq.write_table(semantic_ids_table(ids, codes), out / rf.SEMANTIC_IDS_FILE)
    rf.write_json(out / rf.QUALITY_FILE, quality)
    rf.write_json(out / rf.METRICS_FILE, summary["history"])
    inputs = {"data": rf.describe_input(cfg.data)}
    if cfg.embeddings:
        inputs["embeddings"] = rf.describe_input(cfg.embeddings, manifest=False)
    details = {"rqvae": dataclasses.asdict(cfg.rqvae), "best_epoch": summary["best_epoch"]}
    info = rf.new_run_info(
        "semantic_ids", cfg.rqvae.seed, inputs, **details, embedder=None if cfg.embeddings else cfg.embedder.model
    )
    rf.write_run_info(out, info)
    logger.info("semantic IDs for %d items in %s: %s", len(ids), out, quality)
    return quality
