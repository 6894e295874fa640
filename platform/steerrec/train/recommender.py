"""Train TIGER, Mender-Tok, Mender-Emb or SASRec on a benchmark folder, on Ray Train or locally.

    summary = train_recommender(RecommenderJobConfig(model="tiger", data="data/world",
        benchmark="bench/world", semantic_ids="runs/ids/semantic_ids.parquet", out="runs/tiger-s0"))

The driver reads the catalog and the mixture's examples, encodes them for the model
(embedding preferences and items once for Mender-Emb) and puts them in the object
store; each worker runs steerrec.train.loop on its shard. The run folder then gets the
best epoch's model (`write_run_folder`; steerrec.run_folder documents the files).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from steerrec.benchmark.axes import RECOMMENDATION
from steerrec.data import io, schema
from steerrec.embed import EmbedderConfig
from steerrec.train import batches as B
from steerrec.train.loop import LoopConfig, RayScaling, fit_local, fit_ray, make_train_fn

logger = logging.getLogger(__name__)

MODEL_NAMES = ("tiger", "mender_tok", "mender_emb", "sasrec")


@dataclass
class RecommenderJobConfig:
    model: str = "tiger"  # registry name: tiger, mender_tok, mender_emb, sasrec
    model_config: dict[str, Any] = field(default_factory=dict)  # the model config's fields to set
    data: str = ""  # dataset folder (items.parquet, manifest.json)
    benchmark: str = ""  # benchmark folder (axes/<axis>/<split>.parquet)
    semantic_ids: str = ""  # semantic_ids.parquet from jobs/train_semantic_ids.py ("" only for sasrec)
    out: str = ""  # the run folder
    mixture: str = "recommendation"  # training data mixture (steerrec.train.batches.MIXTURES)
    neg_weight: float = 0.1  # unlikelihood weight of negative sentiment examples
    beam_size: int = 20  # validation / evaluation beam width (>= 10)
    max_valid: int = 512  # validation examples per epoch; 0 = all
    # length-bucketed batches: each run of this many batches is sorted by history length
    # before it is cut (less padding); 0 = plain shuffled batches
    length_buckets: int = 0
    use_ray: bool = True  # False: the same loop in this process (fit_local)
    embedder: EmbedderConfig = field(default_factory=EmbedderConfig)  # Mender-Emb's text embedder
    loop: LoopConfig = field(default_factory=LoopConfig)
    scaling: RayScaling = field(default_factory=RayScaling)

    def __post_init__(self) -> None:
        if self.model not in MODEL_NAMES:
            raise ValueError(f"model must be one of {MODEL_NAMES}, got {self.model!r}")
        if not (self.data and self.benchmark and self.out):
            raise ValueError(
                f"data, benchmark and out are required, got {self.data!r}, {self.benchmark!r}, {self.out!r}"
            )
        if not self.semantic_ids and self.model != "sasrec":
            raise ValueError(f"semantic_ids is required for model {self.model!r}")
        if self.mixture not in B.MIXTURES:
            raise ValueError(f"mixture must be one of {sorted(B.MIXTURES)}, got {self.mixture!r}")
        if self.model in B.PREFERENCE_FREE and self.mixture != "recommendation":
            raise ValueError(f"model {self.model!r} reads no preferences: mixture must be 'recommendation'")
        if self.beam_size < 10 or self.max_valid < 0 or self.neg_weight < 0 or self.length_buckets < 0:
            raise ValueError("beam_size must be >= 10, max_valid, neg_weight and length_buckets >= 0")


@dataclass
class Prepared:
    """What every worker needs: the resolved model config and encoded examples."""

    model: str
    model_cfg: Any
    catalog: B.Catalog
    train: dict[str, Any]
    valid: dict[str, Any]
    item_emb: np.ndarray | None = None


def read_catalog(cfg: RecommenderJobConfig) -> B.Catalog:
    items = io.read_table(f"{cfg.data}/{schema.ITEMS_FILE}", columns=["item_id", "title"])
    if cfg.semantic_ids:
        return B.Catalog.from_tables(io.read_table(cfg.semantic_ids), items, cfg.semantic_ids)
    return B.Catalog(
        items.column("item_id").to_pylist(),
        items.column("title").to_pylist(),
        np.zeros((items.num_rows, 0), dtype=np.int64),
    )


def model_config(cfg: RecommenderJobConfig, catalog: B.Catalog, embed_dim: int | None) -> Any:
    """The model's config from cfg.model_config, sizes the data fixes filled in and checked."""
    from steerrec.config import from_dict
    from steerrec.models import config_class

    values = dict(cfg.model_config)
    if cfg.model == "sasrec":
        values.setdefault("n_items", len(catalog.item_ids))
    else:
        sizes = [int(s) for s in catalog.codes.max(0) + 1]
        given = values.setdefault("codebook_sizes", sizes)
        if len(given) != len(sizes) or any(g < s for g, s in zip(given, sizes)):
            raise ValueError(
                f"model_config.codebook_sizes {given} does not hold the semantic IDs' codes "
                f"(needs {len(sizes)} levels of at least {sizes}) in {cfg.semantic_ids}"
            )
    if cfg.model == "mender_emb":
        values.setdefault("embed_dim", embed_dim)
    return from_dict(config_class(cfg.model), values, "model_config", "model_config")


def embedder(cfg: EmbedderConfig) -> Callable[[list[str]], np.ndarray]:
    from steerrec.embed import embed_texts

    return lambda texts: embed_texts(texts, cfg)


def rendered_texts(item_ids: list[str], data: str) -> list[str]:
    """The items' rendered listings (steerrec.data.text), in `item_ids` order."""
    from steerrec.data.text import render_items

    items = io.read_table(f"{data}/{schema.ITEMS_FILE}")
    text_of = dict(zip(items.column("item_id").to_pylist(), render_items(items)))
    return [text_of[i] or i for i in item_ids]


def item_embeddings(catalog: B.Catalog, data: str, embed: Callable[[list[str]], np.ndarray]) -> np.ndarray:
    """Embeddings of the items' rendered text (steerrec.data.text), in catalog order."""
    return np.asarray(embed(rendered_texts(catalog.item_ids, data)), dtype=np.float32)


def prepare(cfg: RecommenderJobConfig, embed: Callable[[list[str]], np.ndarray] | None = None) -> Prepared:
    """Catalog, examples of the mixture (train) and of the recommendation axis (valid), encoded."""
    catalog = read_catalog(cfg)
    train = B.training_examples(cfg.benchmark, cfg.mixture, catalog, "train")
    valid_table = B.read_axis(cfg.benchmark, RECOMMENDATION, "valid")
    valid = B.axis_examples(valid_table, RECOMMENDATION, catalog, f"{cfg.benchmark} valid")
    if cfg.max_valid and len(valid) > cfg.max_valid:
        valid = valid.take(np.random.default_rng(cfg.loop.seed).choice(len(valid), cfg.max_valid, replace=False))
    item_emb = texts = None
    if cfg.model == "mender_emb":
        embed = embed or embedder(cfg.embedder)
        item_emb = item_embeddings(catalog, cfg.data, embed)
        texts = B.TextTable.build([train, valid], embed, item_emb.shape[1])
    model_cfg = model_config(cfg, catalog, None if item_emb is None else item_emb.shape[1])
    encode = lambda ex: B.encode(cfg.model, model_cfg, ex, catalog, item_emb, texts)
    logger.info(
        "%s: %d train and %d valid examples, %d items", cfg.model, len(train), len(valid), len(catalog.item_ids)
    )
    return Prepared(cfg.model, model_cfg, catalog, encode(train), encode(valid), item_emb)


class RecommenderTask:
    """steerrec.train.loop.Task for one recommender: batches, loss, validation NDCG/Recall."""

    def __init__(self, prepared: Prepared, cfg: RecommenderJobConfig) -> None:
        self.p, self.cfg = prepared, cfg
        self.trie = None

    def build_model(self) -> Any:
        from steerrec.models import build_model
        from steerrec.train.ranking import build_trie

        model = build_model(self.p.model, self.p.model_cfg)
        self.trie = build_trie(model, self.p.catalog.codes)
        return model

    def train_batches(self, epoch: int, rank: int, world_size: int):
        seed = self.cfg.loop.seed * 100_003 + epoch
        size, buckets = self.cfg.loop.batch_size, self.cfg.length_buckets
        return B.iter_batches(self.p.train, size, True, seed, rank, world_size, buckets)

    def steps_per_epoch(self, world_size: int) -> int:
        from steerrec.train.batch_order import batch_indices

        return len(batch_indices(self.p.train, self.cfg.loop.batch_size, world_size=world_size))

    def valid_loss(self, model: Any, rank: int, world_size: int) -> dict[str, float]:
        """The teacher-forced training loss on this rank's share of the valid examples (sums)."""
        total, count = 0.0, 0
        for batch in B.iter_batches(self.p.valid, self.cfg.loop.batch_size, False, 0, rank, world_size):
            n = len(batch["target"])
            total += float(self.loss(model, batch)) * n
            count += n
        return {"loss": total, "count": float(count)}

    def loss(self, model: Any, batch: dict[str, Any]) -> Any:
        from steerrec.train.ranking import to_device

        batch = to_device(batch, next(model.parameters()).device)
        return model(batch) if self.p.model == "sasrec" else model(batch, self.cfg.neg_weight)

    def validate(self, model: Any, rank: int, world_size: int) -> dict[str, float]:
        from steerrec.train.ranking import hit_sums, rank_encoded

        ranked, index = rank_encoded(
            model, self.p.valid, self.trie, self.cfg.beam_size, 10, self.cfg.loop.batch_size, rank, world_size
        )
        return hit_sums(ranked, self.p.valid["item"][index])


def _build_task(config: dict[str, Any]) -> RecommenderTask:
    import ray
    from steerrec.config import from_dict

    prepared = config["prepared"]
    prepared = ray.get(prepared) if isinstance(prepared, ray.ObjectRef) else prepared
    return RecommenderTask(prepared, from_dict(RecommenderJobConfig, config["job"], "job"))


def train_recommender(
    cfg: RecommenderJobConfig,
    report: Callable[[dict], None] | None = None,
    embed: Callable[[list[str]], np.ndarray] | None = None,
) -> dict[str, Any]:
    """Train, then write the run folder `cfg.out`; returns the training summary.

    `report` gets each epoch's metrics in the local path (under Ray they are in the
    Result and metrics.json); `embed` replaces cfg.embedder's model (texts -> [n, d]).
    """
    from steerrec.config import to_dict

    prepared = prepare(cfg, embed)
    out = Path(cfg.out).absolute()
    if cfg.use_ray:
        import ray

        config = {"job": to_dict(cfg), "loop": dataclasses.asdict(cfg.loop), "prepared": ray.put(prepared)}
        result = fit_ray(make_train_fn(_build_task), config, cfg.scaling, str(out / "ray"), out.name)
        summary, checkpoint = result.return_value, Path(result.checkpoint.to_directory())
    else:
        summary, checkpoint = fit_local(RecommenderTask(prepared, cfg), cfg.loop, out / "checkpoints", report)
    write_run_folder(cfg, prepared, checkpoint, summary)
    return summary


def write_run_folder(cfg: RecommenderJobConfig, prepared: Any, checkpoint: Path, summary: dict[str, Any]) -> None:
    """The best weights of `checkpoint` (steerrec.train.loop) and everything serving needs
    (steerrec.run_folder documents the files; run.json is written last)."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from safetensors.torch import load_model

    from steerrec import run_folder as rf
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
            pa.table({"item_id": ids, "codes": codes}, schema=schema.SEMANTIC_IDS), out / rf.SEMANTIC_IDS_FILE
        )
    texts = rendered_texts(catalog.item_ids, cfg.data)  # what steering matches preferences against
    items = {"item_id": ids, "title": pa.array(catalog.titles, pa.string()), "text": pa.array(texts, pa.string())}
    pq.write_table(pa.table(items), out / rf.ITEMS_FILE)
    if prepared.item_emb is not None:
        from steerrec.embed import vectors_to_arrow

        table = pa.table({"item_id": ids, "embedding": vectors_to_arrow(prepared.item_emb)})
        pq.write_table(table, out / rf.ITEM_EMBEDDINGS_FILE)
    dump(cfg, out / rf.JOB_FILE)
    rf.write_json(out / rf.METRICS_FILE, summary)
    inputs = {"data": rf.describe_input(cfg.data), "benchmark": rf.describe_input(cfg.benchmark)}
    if cfg.semantic_ids:
        inputs["semantic_ids"] = rf.describe_input(cfg.semantic_ids, manifest=False)
    details = {"model": prepared.model, "mixture": cfg.mixture, "best_epoch": summary["best_epoch"]}
    info = rf.new_run_info("recommender", cfg.loop.seed, inputs, **details, best_valid=summary["best"])
    rf.write_run_info(out, info)
    logger.info("run folder %s: %s, best epoch %d", out, prepared.model, summary["best_epoch"])
