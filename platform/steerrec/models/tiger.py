"""TIGER (Rajput et al. 2023): a T5 encoder-decoder over semantic-ID tokens.

Input: the semantic-ID tokens of the user's most recent `max_history` items, L per item
(`SemanticIdVocab.encode_history`); output: the next item's L tokens. Sizes follow the
Mender paper's reproduction (App. A.2). The optional user embedding is left out: the
paper found it brings no benefit (App. A.4, Fig. 7).

Batch: `history` [B, max_history * L] (PAD=0 right padding), `target` [B, L], optional
`weight` [B], `negative` [B].
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from steerrec.models.seq2seq import (
    GenerativeRecommender,
    cache_arg,
    check_codebook_sizes,
    check_t5_sizes,
    t5_from_sizes,
)
from steerrec.models.vocab import BOS, PAD, SemanticIdVocab


def _default_codebooks() -> list[int]:
    return [256, 256, 256, 32]


@dataclass
class TigerConfig:
    # 3 RQ-VAE levels and the collision code; must match the semantic IDs the model reads
    codebook_sizes: list[int] = field(default_factory=_default_codebooks)
    max_history: int = 20
    num_layers: int = 6  # encoder layers
    num_decoder_layers: int = 6
    d_model: int = 128
    d_ff: int = 1024
    num_heads: int = 6
    d_kv: int = 64
    dropout: float = 0.1

    def __post_init__(self) -> None:
        check_codebook_sizes("tiger", self.codebook_sizes)
        check_t5_sizes("tiger", self)
        if not isinstance(self.num_decoder_layers, int) or self.num_decoder_layers < 1:
            raise ValueError(f"tiger.num_decoder_layers must be an int >= 1, got {self.num_decoder_layers!r}")
        if not isinstance(self.max_history, int) or self.max_history < 1:
            raise ValueError(f"tiger.max_history must be an int >= 1, got {self.max_history!r}")


class Tiger(GenerativeRecommender, nn.Module):
    """T5ForConditionalGeneration (random init) with semantic-ID tokens in and out."""

    config_class = TigerConfig

    def __init__(self, config: TigerConfig) -> None:
        super().__init__()
        self.config = config
        self.vocab = SemanticIdVocab(config.codebook_sizes)
        self.t5 = t5_from_sizes(config, self.vocab.size, PAD, None, BOS, num_decoder_layers=config.num_decoder_layers)

    def encode(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        history = batch["history"]
        width = self.config.max_history * self.vocab.n_levels
        if history.shape[1] > width:
            raise ValueError(f"history has {history.shape[1]} tokens; tiger.max_history allows {width}")
        # histories are padded to max_history items: drop the trailing columns that are padding
        # in every row (masked anyway), so a batch of short histories encodes as short
        used = torch.nonzero((history != PAD).any(0))
        history = history[:, : int(used[-1]) + 1 if len(used) else 1]
        mask = history != PAD
        memory = self.t5.encoder(input_ids=history, attention_mask=mask.long()).last_hidden_state
        return {"memory": memory, "mask": mask}

    def decode(self, inputs: torch.Tensor, memory: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        out = self.t5(encoder_outputs=(memory,), attention_mask=mask.long(), decoder_input_ids=inputs, use_cache=False)
        return out.logits

    def decode_step(self, inputs: torch.Tensor, memory: torch.Tensor, mask: torch.Tensor, cache):
        out = self.t5(
            encoder_outputs=(memory,),
            attention_mask=mask.long(),
            decoder_input_ids=inputs,
            use_cache=True,
            **{cache_arg(): cache},
        )
        return out.logits, getattr(out, cache_arg())
