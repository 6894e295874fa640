"""Small prepared-dataset folders that several test suites build."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def movielens_like(root: Path, n_users: int = 10, n_items: int = 60, length: int = 10, seed: int = 0) -> str:
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


def tiny_langptune(data: str, out: Path | str, **extra) -> dict:
    """A LangPTuneConfig dict for a tiny random policy (1 layer, d32) and a 1-epoch, 1-batch
    alternation on `data`; `extra` replaces top-level keys."""
    return {
        "data": data,
        "out": str(out),
        "cl_sessions": 4,
        "policy": {
            "model": {"hidden_size": 32, "num_layers": 1, "num_heads": 4, "intermediate_size": 64, "vocab_size": 300},
            "rollout": {"profile_length": 16},
            "reward": {"k": 3},
            "sessions_per_iteration": 2,
            "minibatch": 2,
        },
        "embedder_phase": {"batch_size": 2},
        "policy_loop": {"epochs": 1, "lr": 0.05},
        "embedder_loop": {"epochs": 1, "lr": 1e-4, "max_batches": 1},
    } | extra
