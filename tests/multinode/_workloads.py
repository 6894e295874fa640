"""Small inputs for the multi-node tests: a tiny world with a recommendation benchmark and
unique semantic IDs (no embedder, no RQ-VAE), a MovieLens-shaped folder for alignment, and
the state-API counts that show where work ran."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

TIGER = dict(num_layers=1, num_decoder_layers=1, d_model=32, d_ff=64, num_heads=2, d_kv=16, max_history=8, dropout=0.0)


def tiny_world(root: Path, n_train: int) -> Path:
    """world data + bench/axes/recommendation/{train,valid} (the first `n_train` train rows)
    + semantic_ids.parquet (codes [i // 8, i % 8, 0], unique)."""
    from steerrec.benchmark.axes import RECOMMENDATION, axis_file, axis_schema
    from steerrec.data.prepare import PrepareConfig, prepare
    from steerrec.data.schema import SEMANTIC_IDS

    prepare(PrepareConfig(format="world", out=str(root / "data"), world={"n_users": 60, "n_items": 40}))
    seq = pq.read_table(root / "data" / "sequences.parquet").to_pylist()
    for split, limit in (("train", n_train), ("valid", None)):
        rows = [
            {k: r[k] for k in ("user_id", "t", "history", "target")} | {"preference": "anything"}
            for r in seq
            if r["split"] == split
        ][:limit]
        path = root / "bench" / axis_file(RECOMMENDATION, split)
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.Table.from_pylist(rows, schema=axis_schema(RECOMMENDATION)), path)
    (root / "bench" / "manifest.json").write_text('{"counts": {}}')
    items = pq.read_table(root / "data" / "items.parquet").column("item_id").to_pylist()
    codes = [[i // 8, i % 8, 0] for i in range(len(items))]
    pq.write_table(pa.table({"item_id": items, "codes": codes}, schema=SEMANTIC_IDS), root / "semantic_ids.parquet")
    return root


def movielens_like(root: Path, n_users: int = 8, n_items: int = 40, length: int = 10, seed: int = 0) -> str:
    """interactions.parquet / items.parquet shaped like a prepared MovieLens folder."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    rows = [
        (f"u{u:02d}", f"i{item}", 1000 + pos, float(rng.choice([1, 4, 5])))
        for u in range(n_users)
        for pos, item in enumerate(rng.choice(n_items, size=length, replace=False))
    ]
    root.mkdir(parents=True)
    pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp", "rating"]).to_parquet(root / "interactions.parquet")
    titles = [f"Movie {k} ({1950 + k})" for k in range(n_items)]
    pd.DataFrame({"item_id": [f"i{k}" for k in range(n_items)], "title": titles}).to_parquet(root / "items.parquet")
    return str(root)


def per_node(lc, kind: str, name: str, seen: set[str] = frozenset()) -> tuple[Counter, set[str]]:
    """How many tasks (kind="task", by function name) or actors (kind="actor", by class name) of
    `name` ran on each worker node, from Ray's state API; skips the ids in `seen` (an earlier
    job's). Returns (Counter by node name, the ids counted)."""
    from ray.util.state import list_actors, list_tasks

    if kind == "task":
        rows = list_tasks(
            address=lc.dashboard_url, filters=[("name", "=", name)], limit=10_000, raise_on_missing_output=False
        )
        ids = {r.task_id: r for r in rows if r.task_id not in seen}
    else:
        rows = list_actors(
            address=lc.dashboard_url, filters=[("class_name", "=", name)], limit=10_000, raise_on_missing_output=False
        )
        ids = {r.actor_id: r for r in rows if r.actor_id not in seen}
    return Counter(lc.name_of(r.node_id) or r.node_id for r in ids.values()), set(ids)


def load_weights(path: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(path))
