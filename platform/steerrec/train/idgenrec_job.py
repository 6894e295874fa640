"""IDGenRec from a dataset and benchmark folder to a run folder (jobs/train_idgenrec.py).

    summary = run_idgenrec(IDGenRecJobConfig(data="data/world", benchmark="bench/world", out="runs/idgenrec"))

Reads the items' rendered listings (steerrec.data.text, as Mender-Emb embeds them) and the
recommendation axis (train for training, valid for validation), trains in this process
on Ray Train (`use_ray`, the default, as for the other recommenders) or in this process
(steerrec.train.idgenrec; the phases' checkpoints under <out>/phases, so a rerun resumes),
then writes the run folder (steerrec.run_folder lists the files):

    config.yaml, model.safetensors   both T5s (IDGenRec.save), the last round's best epoch
    tokenizer.json                   the tokenizer both read
    semantic_ids.parquet             item_id, codes = the textual ID's token ids (variable
                                     length), text = the ID as read
    items.parquet, job.yaml, metrics.json, run.json (kind recommender, model idgenrec)

"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from steerrec.train.idgenrec import IDGenRecTrainConfig, train_idgenrec
from steerrec.train.idgenrec_batches import IDGenRecData, Split
from steerrec.train.idgenrec_ids import PHASES_DIR
from steerrec.train.loop import RayScaling

logger = logging.getLogger(__name__)


@dataclass
class IDGenRecJobConfig:
    data: str = ""  # dataset folder (items.parquet, manifest.json)
    benchmark: str = ""  # benchmark folder (axes/recommendation/{train,valid}.parquet)
    out: str = ""  # the run folder
    train: IDGenRecTrainConfig = field(default_factory=IDGenRecTrainConfig)
    use_ray: bool = True  # False: every phase in this process (fit_local)
    scaling: RayScaling = field(default_factory=RayScaling)

    def __post_init__(self) -> None:
        if not (self.data and self.benchmark and self.out):
            raise ValueError(
                f"data, benchmark and out are required, got {self.data!r}, {self.benchmark!r}, {self.out!r}"
            )


def read_data(cfg: IDGenRecJobConfig) -> IDGenRecData:
    """Items in items.parquet order with their rendered text; the recommendation axis' rows."""
    from steerrec.benchmark.axes import RECOMMENDATION
    from steerrec.data import io, schema
    from steerrec.data.text import render_items
    from steerrec.train import batches as B

    items = io.read_table(f"{cfg.data}/{schema.ITEMS_FILE}")
    item_ids = items.column("item_id").to_pylist()
    catalog = B.Catalog(item_ids, items.column("title").to_pylist(), np.zeros((len(item_ids), 0), dtype=np.int64))
    texts = render_items(items)  # "" where every field is empty: IDGenRecData counts it, reads the id string

    def split(name: str) -> Split:
        table = B.read_axis(cfg.benchmark, RECOMMENDATION, name)
        ex = B.axis_examples(table, RECOMMENDATION, catalog, f"{cfg.benchmark} {name}")
        return Split(ex.history, ex.target)

    titles = [t or "" for t in catalog.titles]
    return IDGenRecData(item_ids, texts, titles, split("train"), split("valid"))


def run_idgenrec(cfg: IDGenRecJobConfig, report=None) -> dict[str, Any]:
    """Train (resuming what <out>/phases holds), then write the run folder; returns the summary."""
    data = read_data(cfg)
    out = Path(cfg.out)
    scaling = cfg.scaling if cfg.use_ray else None
    summary, weights = train_idgenrec(data, cfg.train, out / PHASES_DIR, report, scaling)
    write_run_folder(cfg, data, summary, weights)
    return summary


def write_run_folder(cfg: IDGenRecJobConfig, data: IDGenRecData, summary: dict[str, Any], weights: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq
    from safetensors.torch import load_model

    from steerrec import run_folder as rf
    from steerrec.config import dump
    from steerrec.data import schema
    from steerrec.models.idgenrec import IDGenRec
    from steerrec.models.idgenrec_text import TOKENIZER_FILE, load_tokenizer
    from steerrec.train.idgenrec_ids import ids_file, load_ids

    out, phases = Path(cfg.out), Path(cfg.out) / PHASES_DIR
    tokenizer = load_tokenizer(str(phases / TOKENIZER_FILE))
    model = IDGenRec(replace(cfg.train.model, vocab_size=len(tokenizer)))
    load_model(model, str(weights))
    model.save(out)
    shutil.copy(phases / TOKENIZER_FILE, out / TOKENIZER_FILE)
    final = summary["final"]
    ids, _ = load_ids(ids_file(phases, final["ids"]))
    item_ids = pa.array(data.item_ids, pa.string())
    table = pa.table(
        {
            "item_id": item_ids,
            "codes": pa.array([list(t) for t in ids], pa.list_(pa.int32())),
            "text": pa.array([tokenizer.decode(list(t)) for t in ids], pa.string()),
        }
    )
    pq.write_table(schema.validate(table, schema.SEMANTIC_IDS, "textual ids"), out / rf.SEMANTIC_IDS_FILE)
    items = {"item_id": item_ids, "title": pa.array(data.titles), "text": pa.array(data.texts)}
    pq.write_table(pa.table(items), out / rf.ITEMS_FILE)
    dump(cfg, out / rf.JOB_FILE)
    rf.write_json(out / rf.METRICS_FILE, summary)
    # id_only trains no recommender: no best epoch nor valid ranking to report
    last = summary["phases"][final["rec"]] if final["rec"] else {"best_epoch": None, "best": None}
    inputs = {"data": rf.describe_input(cfg.data), "benchmark": rf.describe_input(cfg.benchmark)}
    details = {"model": "idgenrec", "mixture": "recommendation", "best_epoch": last["best_epoch"]}
    details |= {"ids": summary["ids"][final["ids"]], "rounds": cfg.train.rounds, "strategy": cfg.train.strategy}
    rf.write_run_info(
        out, rf.new_run_info("recommender", cfg.train.loop.seed, inputs, **details, best_valid=last["best"])
    )
    logger.info("run folder %s: idgenrec (%s), best valid ndcg@10 %s", out, cfg.train.strategy, last["best"])
