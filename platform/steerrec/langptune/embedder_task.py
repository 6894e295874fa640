"""The InfoNCE embedder phase as a `steerrec.train.loop.Task` (Algorithm 1, lines 4-10).

Pairs are (query text, positive item id): for LangPTune the query is a profile the
current policy wrote for a training session (line 6), for EMB-CL the session's history
rendered as text. Each batch's other positives are its negatives (Eq. 7); a batch row
whose positive repeats another row's is not that row's negative (`key_ids`).
Checkpoints hold every embedder weight (safetensors through the loop).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from steerrec.alignment.losses import get_loss
from steerrec.langptune.config import EmbedderPhaseConfig
from steerrec.langptune.embedder import Catalog, embed_frozen, embed_grad, load_trainable
from steerrec.langptune.reward import top_k_by_cosine
from steerrec.metrics import ndcg_rows, recall_at_k

logger = logging.getLogger(__name__)

Pair = tuple[str, str]  # (query text, positive item id)


class EmbedderTask:
    def __init__(
        self,
        cfg: EmbedderPhaseConfig,
        pairs: dict[str, Sequence[Pair]],
        catalog: Catalog,
        init_weights: str | Path | None = None,
        model: Any = None,
    ) -> None:
        if len(pairs.get("train", ())) < 2:
            raise ValueError("the embedder phase needs at least 2 training pairs (in-batch negatives)")
        for rows in pairs.values():
            catalog.rows([item for _, item in rows])  # every positive must be rankable
        self.cfg, self.pairs, self.catalog, self.init_weights = cfg, pairs, catalog, init_weights
        self.model = model  # an embedder to train in place; None: a fresh one from cfg.embedder

    def build_model(self) -> Any:
        model = self.model if self.model is not None else load_trainable(self.cfg.embedder)
        if self.init_weights:
            from steerrec.train.loop import load_weights

            load_weights(model, Path(self.init_weights))
        return model

    def train_batches(self, epoch: int, rank: int, world_size: int) -> list[dict[str, Any]]:
        train = self.pairs["train"]
        order = np.random.default_rng([self.cfg.seed, epoch]).permutation(len(train))[rank::world_size]
        size = self.cfg.batch_size
        batches = [[train[int(i)] for i in order[s : s + size]] for s in range(0, len(order), size)]
        batches = [b for b in batches if len(b) >= 2]  # a lone row has no negative
        return [{"pairs": b} for b in batches]  # shuffled: the loop's max_batches (J) takes the first ones

    def steps_per_epoch(self, world_size: int) -> int:
        rows = -(-len(self.pairs["train"]) // world_size)  # rank 0's share
        full, rest = divmod(rows, self.cfg.batch_size)
        return max(1, full + (rest >= 2))  # train_batches drops a lone last row

    def loss(self, model: Any, batch: dict[str, Any]) -> tuple[Any, dict[str, float]]:
        import torch

        queries = [q for q, _ in batch["pairs"]]
        rows = self.catalog.rows([item for _, item in batch["pairs"]])
        keys = embed_grad(model, [self.catalog.texts[r] for r in rows])
        out = get_loss("infonce")(
            embed_grad(model, queries), keys, self.cfg.infonce.temperature, torch.from_numpy(rows)
        )
        return out.loss, {"examples": len(queries)}

    def validate(self, model: Any, rank: int, world_size: int) -> dict[str, float]:
        """NDCG@k / Recall@k sums of the valid queries' positives over the whole catalog."""
        pairs = list(self.pairs.get("valid", ()))[: self.cfg.max_valid][rank::world_size]
        if not pairs:
            return {"count": 0.0}
        k = self.cfg.k
        items = embed_frozen(model, self.catalog.texts, self.cfg.embedder.batch_size)
        ranked = top_k_by_cosine(embed_frozen(model, [q for q, _ in pairs]), items, k)
        targets = self.catalog.rows([item for _, item in pairs])
        width = ranked.shape[1]
        n = float(len(pairs))
        return {
            f"ndcg@{k}": float(ndcg_rows(ranked, targets, width).sum()),
            f"recall@{k}": recall_at_k(ranked, targets, width) * n,
            "count": n,
        }
