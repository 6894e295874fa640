"""SASRec (Kang & McAuley 2018): the ID-based sequential baseline.

Item embeddings (scaled by sqrt(hidden)) plus learned positions, causal self-attention
blocks (pre-LayerNorm, ReLU feed-forward of width `hidden`), padding zeroed after every
block, items scored by dot product with the shared item embeddings.

Trained with full softmax cross-entropy over all items rather than the paper's BCE
against one sampled negative: recent reproductions (e.g. Klenitskiy & Vasilev 2023)
find it stronger, and it needs no negative sampler. `loss: bce` trains as the paper
does instead (each target against one uniformly sampled negative), the baseline the
generative-retrieval papers compare with. Evaluation scores every item either way.

Item ids are 1..n_items, 0 is padding; histories are left-padded (right-aligned), so the
most recent item is the last column and always has position max_len - 1.
Column k of `score_all` and of the logits is item id k + 1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from steerrec.models.seq2seq import Persistent

LOSSES = ("ce", "bce")


@dataclass
class SASRecConfig:
    n_items: int
    hidden: int = 64
    num_blocks: int = 2
    num_heads: int = 1
    dropout: float = 0.2
    max_len: int = 50
    loss: str = "ce"  # ce: softmax over all items; bce: the paper's, against one sampled negative

    def __post_init__(self) -> None:
        for name in ("n_items", "hidden", "num_blocks", "num_heads", "max_len"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"sasrec.{name} must be an int >= 1, got {value!r}")
        if self.hidden % self.num_heads:
            raise ValueError(f"sasrec.hidden ({self.hidden}) must be divisible by sasrec.num_heads ({self.num_heads})")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"sasrec.dropout must be in [0, 1), got {self.dropout}")
        if self.loss not in LOSSES:
            raise ValueError(f"sasrec.loss must be one of {list(LOSSES)}, got {self.loss!r}")
        if self.loss == "bce" and self.n_items < 2:
            raise ValueError(f"sasrec.loss 'bce' needs n_items >= 2 to sample a negative, got {self.n_items}")


def bce_loss(pos_scores: torch.Tensor, neg_scores: torch.Tensor) -> torch.Tensor:
    """SASRec's loss (Kang & McAuley 2018, Eq. 4), averaged over positions: [N], [N] -> [].

    mean of -log sigmoid(s_pos) - log(1 - sigmoid(s_neg)); 1 - sigmoid(s) = sigmoid(-s).
    Scores (0, 0): 2 log 2 = 1.3863; (2, -1): log(1 + e^-2) + log(1 + e^-1) = 0.4402.
    """
    return -(F.logsigmoid(pos_scores) + F.logsigmoid(-neg_scores)).mean()


def sample_negatives(target: torch.Tensor, n_items: int) -> torch.Tensor:
    """One item id per target, uniform over 1..n_items minus the target (torch's RNG)."""
    negatives = torch.randint(1, n_items + 1, target.shape, device=target.device)
    clash = negatives == target
    while clash.any():  # resample the clashes only: each try clashes with probability 1/n_items
        negatives[clash] = torch.randint(1, n_items + 1, (int(clash.sum()),), device=target.device)
        clash = negatives == target
    return negatives


class SASRec(Persistent, nn.Module):
    """Batch: `history` [B, T] item ids (left-padded with 0), `target` either [B, T]
    (the next item at every position, 0 = none: the usual all-positions training) or [B]
    (the item after the last position)."""

    config_class = SASRecConfig

    def __init__(self, config: SASRecConfig) -> None:
        super().__init__()
        self.config = config
        self.item_emb = nn.Embedding(config.n_items + 1, config.hidden, padding_idx=0)
        self.pos_emb = nn.Embedding(config.max_len, config.hidden)
        self.dropout = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(
            nn.TransformerEncoderLayer(
                config.hidden,
                config.num_heads,
                dim_feedforward=config.hidden,
                dropout=config.dropout,
                activation="relu",
                batch_first=True,
                norm_first=True,
            )
            for _ in range(config.num_blocks)
        )
        self.final_norm = nn.LayerNorm(config.hidden)
        # small embeddings, as RecBole's SASRec: item_emb is also the output layer, and
        # nn.Embedding's N(0, 1) start gives logits of std ~sqrt(hidden) (a loss of ~40)
        nn.init.normal_(self.item_emb.weight, std=0.02)
        nn.init.normal_(self.pos_emb.weight, std=0.02)
        with torch.no_grad():
            self.item_emb.weight[0].zero_()

    def hidden_states(self, history: torch.Tensor) -> torch.Tensor:
        """[B, T] item ids -> [B, T, hidden]; position t sees items at positions <= t only."""
        T = history.shape[1]
        if self.config.max_len < T:
            raise ValueError(f"history has {T} items; sasrec.max_len allows {self.config.max_len}")
        if history.numel() and (int(history.min()) < 0 or int(history.max()) > self.config.n_items):
            raise ValueError(f"history ids must be in 0..{self.config.n_items} (0 = padding)")
        keep = (history != 0).unsqueeze(-1).to(self.item_emb.weight.dtype)  # [B, T, 1]
        positions = torch.arange(self.config.max_len - T, self.config.max_len, device=history.device)
        x = self.item_emb(history) * math.sqrt(self.config.hidden) + self.pos_emb(positions)[None]
        x = self.dropout(x) * keep
        causal = torch.triu(torch.ones(T, T, dtype=torch.bool, device=history.device), diagonal=1)
        for block in self.blocks:
            x = block(x, src_mask=causal, is_causal=True) * keep
        return self.final_norm(x)

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """[..., hidden] -> scores of items 1..n_items [..., n_items]."""
        return hidden @ self.item_emb.weight[1:].T

    def forward(self, batch: dict[str, Any]) -> torch.Tensor:
        """Mean loss over every position that has a target: cross-entropy over all items
        (loss=ce) or BCE of the target against one sampled negative (loss=bce)."""
        history, target = batch["history"], batch["target"]
        hidden = self.hidden_states(history)
        if target.ndim == 1:
            hidden, target = hidden[:, -1:], target[:, None]
        if target.shape != hidden.shape[:2]:
            raise ValueError(f"target {list(target.shape)} does not fit history {list(history.shape)}")
        if self.config.loss == "bce":
            keep = target > 0
            states, positives = hidden[keep], target[keep].long()  # [N, hidden], [N]
            negatives = sample_negatives(positives, self.config.n_items)
            weight = self.item_emb.weight  # row k scores item id k, as in `logits`
            return bce_loss((states * weight[positives]).sum(-1), (states * weight[negatives]).sum(-1))
        labels = target.long() - 1  # item id k -> class k - 1; padding -> -1 (ignored)
        return F.cross_entropy(self.logits(hidden).flatten(0, 1), labels.flatten(), ignore_index=-1)

    def score_all(self, history_ids: torch.Tensor) -> torch.Tensor:
        """[B, H] left-padded histories -> [B, n_items] scores of every item (column k = id k + 1)."""
        return self.logits(self.hidden_states(history_ids)[:, -1])
