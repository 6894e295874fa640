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
