"""What TIGER and both Mender variants share: the loss, the decoder, beam-search stepping, save/load.

A generative recommender encodes its input once (`encode(batch) -> state`, a dict of
tensors with a leading batch dimension: `memory` [B, S, d] and `mask` [B, S]) and decodes
the L semantic-ID tokens of the next item with a decoder that cross-attends to `memory`.
"""

from __future__ import annotations

import functools
import inspect
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from safetensors.torch import load_model, save_model

from steerrec.config import dump
from steerrec.config import load as load_config
from steerrec.data.schema import CONFIG_FILE, MODEL_FILE
from steerrec.models.vocab import BOS, PAD

logger = logging.getLogger(__name__)

WEIGHTS_FILE = MODEL_FILE  # the run folder's names (steerrec.data.schema)
BEAM_ATTENTION = "steerrec_beams"  # the attention implementation of our T5 stacks (beam_attention_name)


def beam_attention(module, query, key, value, attention_mask, **kwargs):
    """SDPA, except when the beams of each example share one cross-attention cache.

    In a cached beam-search step the queries are [B * n, h, 1, d] (n beams per example)
    and the cached cross-attention keys/values stay [B, h, S, d]: every beam of an example
    attends to the same encoder output. The n beams are folded into the query length, so
    the keys/values are neither copied per beam nor read n times. Anything else (training,
    self-attention, the first step) is plain SDPA.
    """
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    rows, groups = query.shape[0], key.shape[0]
    if rows == groups:
        return sdpa_attention_forward(module, query, key, value, attention_mask, **kwargs)
    n = rows // groups
    if rows != groups * n or query.shape[2] != 1:
        raise ValueError(f"beam attention: {rows} query rows over {groups} key rows, query length {query.shape[2]}")
    folded = query.view(groups, n, *query.shape[1:]).squeeze(3).transpose(1, 2)  # [B, h, n, d]
    mask = attention_mask[::n] if attention_mask is not None else None  # beams of an example share it
    kwargs["is_causal"] = False
    out, weights = sdpa_attention_forward(module, folded, key, value, mask, **kwargs)  # [B, n, h, d]
    return out.reshape(rows, 1, *out.shape[2:]), weights


def beam_attention_name() -> str:
    """Register `beam_attention` with transformers (idempotent) and return its name, for a
    T5 config's `attn_implementation`. Called where a T5 stack is built, so importing this
    module (SASRec does) does not import transformers."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    AttentionInterface.register(BEAM_ATTENTION, beam_attention)
    AttentionMaskInterface.register(BEAM_ATTENTION, sdpa_mask)
    return BEAM_ATTENTION


@functools.cache
def cache_arg() -> str:
    """What the installed transformers calls a model's KV cache, as forward argument and as
    output field: `cache` in 5.x (where `past_key_values` warns, and goes in 5.40),
    `past_key_values` before. Pass `**{cache_arg(): cache}`, read `getattr(out, cache_arg())`."""
    from transformers.models.t5.modeling_t5 import T5Stack

    return "cache" if "cache" in inspect.signature(T5Stack.forward).parameters else "past_key_values"


@dataclass
class T5StackConfig:
    """Sizes of a randomly initialised T5 stack; defaults are TIGER's (Mender App. A.2).

    Checked by the owning config's __post_init__ (`check_t5_sizes`), which knows its name.
    """

    num_layers: int = 6
    d_model: int = 128
    d_ff: int = 1024
    num_heads: int = 6
    d_kv: int = 64
    dropout: float = 0.1


def check_t5_sizes(prefix: str, cfg: Any) -> None:
    """Raise naming `prefix.field` when a T5 size is not positive or dropout is outside [0, 1)."""
    for name in ("num_layers", "d_model", "d_ff", "num_heads", "d_kv"):
        value = getattr(cfg, name)
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{prefix}.{name} must be an int >= 1, got {value!r}")
    if not 0.0 <= cfg.dropout < 1.0:
        raise ValueError(f"{prefix}.dropout must be in [0, 1), got {cfg.dropout}")


def check_codebook_sizes(prefix: str, sizes: list[int]) -> None:
    if not sizes or any(not isinstance(s, int) or s < 1 for s in sizes):
        raise ValueError(f"{prefix}.codebook_sizes must be a non-empty list of ints >= 1, got {sizes!r}")


def _t5_config(sizes: Any, vocab_size: int, **extra: Any) -> Any:
    """T5Config of `sizes` (num_layers, d_model, d_ff, num_heads, d_kv, dropout), no KV cache,
    the attention the beam search reads; `extra` adds or replaces fields."""
    from transformers import T5Config

    fields = dict(
        vocab_size=vocab_size,
        d_model=sizes.d_model,
        d_ff=sizes.d_ff,
        d_kv=sizes.d_kv,
        num_heads=sizes.num_heads,
        num_layers=sizes.num_layers,
        num_decoder_layers=sizes.num_layers,
        dropout_rate=sizes.dropout,
        use_cache=False,
        attn_implementation=beam_attention_name(),
    )
    return T5Config(**(fields | extra))


def t5_from_sizes(
    sizes: Any, vocab_size: int, pad: int, eos: int | None, decoder_start: int, num_decoder_layers: int | None = None
) -> Any:
    """A randomly initialised T5ForConditionalGeneration (no weights downloaded) of `sizes`
    (num_layers, d_model, d_ff, num_heads, d_kv, dropout: a T5StackConfig or a model config
    with those fields); the decoder has `num_decoder_layers` (default: num_layers)."""
    from transformers import T5ForConditionalGeneration

    decoder_layers = sizes.num_layers if num_decoder_layers is None else num_decoder_layers
    t5_cfg = _t5_config(
        sizes,
        vocab_size,
        num_decoder_layers=decoder_layers,
        pad_token_id=pad,
        eos_token_id=eos,
        decoder_start_token_id=decoder_start,
    )
    return T5ForConditionalGeneration(t5_cfg)


def t5_stack(cfg: T5StackConfig, vocab_size: int, is_decoder: bool):
    """A randomly initialised T5 encoder or decoder stack (no weights downloaded)."""
    from transformers.models.t5.modeling_t5 import T5Stack

    t5_cfg = _t5_config(
        cfg,
        vocab_size,
        is_decoder=is_decoder,
        is_encoder_decoder=is_decoder,
        pad_token_id=PAD,
        decoder_start_token_id=BOS,
    )
    return T5Stack(t5_cfg)


def seq2seq_loss(
    logits: torch.Tensor,
    labels: torch.Tensor,
    weights: torch.Tensor | None = None,
    negative: torch.Tensor | None = None,
    neg_weight: float = 0.1,
) -> torch.Tensor:
    """Token cross-entropy for positives, down-weighted unlikelihood for negatives (Mender Sec. 4.3).

    logits [B, T, V], labels [B, T] (-100 = ignored), weights [B] (None = ones),
    negative [B] bool (None = all positive). Per example, the mean over its tokens of
    -log p(label) (positive) or neg_weight * -log(1 - p(label)) (negative); the loss is
    the mean over the batch of weight * that value.

    Worked value: V=2, logits all 0 (p=0.5), labels [[0], [1]], negative [F, T],
    neg_weight 0.1: (ln 2 + 0.1 ln 2) / 2 = 0.3812.
    """
    if logits.shape[:2] != labels.shape:
        raise ValueError(f"logits {list(logits.shape)} and labels {list(labels.shape)} disagree on [B, T]")
    valid = labels != -100  # [B, T]
    logp = F.log_softmax(logits.float(), dim=-1)
    token_logp = logp.gather(-1, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1)  # [B, T]
    per_token = -token_logp
    if negative is not None:
        # -log(1 - p) computed stably as -log(-expm1(log p)), clamped away from p = 1
        unlikely = -torch.log((-torch.expm1(token_logp)).clamp(min=1e-6))
        per_token = torch.where(negative.bool().unsqueeze(-1), neg_weight * unlikely, per_token)
    count = valid.sum(-1).clamp(min=1)
    per_example = (per_token * valid).sum(-1) / count  # [B]
    if weights is not None:
        per_example = per_example * weights.to(per_example.dtype)
    return per_example.mean()


class Persistent:
    """save/load for an nn.Module with a dataclass `config` and a `config_class` to rebuild it."""

    config_class: type

    def save(self, directory: str | Path) -> None:
        """config.yaml + model.safetensors (shared/tied tensors stored once)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        dump(self.config, directory / CONFIG_FILE)
        save_model(self, str(directory / WEIGHTS_FILE))
        logger.info("saved %s to %s", type(self).__name__, directory)

    @classmethod
    def load(cls, directory: str | Path):
        """Rebuild from config.yaml and load model.safetensors; eval mode."""
        directory = Path(directory)
        model = cls(load_config(cls.config_class, directory / CONFIG_FILE))
        return load_weights(model, directory)


class GenerativeRecommender(Persistent):
    """Mixin for nn.Module subclasses that define `encode`, `decode`, `config`, `vocab`.

    `decode(inputs [N, T], memory [N, S, d], mask [N, S]) -> logits [N, T, V]` where
    `inputs` starts with BOS. Batches carry `target` [B, L] (the next item's tokens) and
    optionally `weight` [B] and `negative` [B].
    """

    def forward(self, batch: dict[str, Any], neg_weight: float = 0.1) -> torch.Tensor:
        """Teacher-forced loss of the batch's target tokens."""
        target = batch["target"]
        state = self.encode(batch)
        logits = self.decode(shift_right(target), state["memory"], state["mask"])
        return seq2seq_loss(logits, target, batch.get("weight"), batch.get("negative"), neg_weight)

    start_tokens = (BOS,)  # what beam search puts before the generated tokens

    def step_fn(self, tokens: torch.Tensor, state: dict[str, Any]):
        """Beam-search step (steerrec.decoding contract): decoder inputs so far [N, t], BOS
        first -> (log-probs of the next token [N, V], state).

        The first call runs the whole prefix and starts a KV cache (`state["cache"]`, HF's
        EncoderDecoderCache); later calls feed only the newest token. The cross-attention
        keys and values over the encoder output are computed once per example, at the
        first step, instead of once per beam per step: with 20-30 beams over a few
        hundred memory positions they were most of the search's work. The cache is
        updated in place, so pass each call the state the previous step or `reorder`
        returned.
        """
        cache = state.get("cache")
        if cache is None:
            from transformers.cache_utils import DynamicCache, EncoderDecoderCache

            cache, inputs = EncoderDecoderCache(DynamicCache(), DynamicCache()), tokens
        else:
            inputs = tokens[:, -1:]
        memory = state["memory"]
        if memory.shape[0] != tokens.shape[0]:  # per example; the cache holds its keys/values
            memory = memory[:1].expand(tokens.shape[0], -1, -1)  # only its shape is read
        logits, cache = self.decode_step(inputs.long(), memory, state["mask"], cache)
        return torch.log_softmax(logits[:, -1].float(), dim=-1), {**state, "cache": cache}

    def decode_step(self, inputs: torch.Tensor, memory: torch.Tensor, mask: torch.Tensor, cache: Any):
        """Logits [N, T, V] of `inputs` after the cached prefix, and the updated cache."""
        raise NotImplementedError

    @staticmethod
    def reorder(state: dict[str, Any], index: torch.Tensor) -> dict[str, Any]:
        """Select (and repeat) rows of the state: beams that survive, or B -> B*beams expansion.

        Beams never move between examples, so per-example rows only change when the number
        of rows does (the expansion), and once a step has filled the cache the encoder
        output and the cross-attention keys/values stay one row per example
        (`beam_attention` shares them among the beams); then only the decoder's
        self-attention cache and the mask follow the beams.
        """
        cache = state.get("cache")
        expand = index.numel() != state["mask"].shape[0]
        out: dict[str, Any] = {}
        for key, value in state.items():
            if key == "cache":
                value.self_attention_cache.reorder_cache(index)
            elif expand and not (cache is not None and key == "memory"):
                value = value.index_select(0, index.to(value.device))
            out[key] = value
        return out

    @torch.no_grad()
    def recommend(self, batch: dict[str, Any], trie: Any, beam_size: int, top_k: int, item_bias: Any = None):
        """Trie-constrained beam search: item rows [B, top_k] and scores [B, top_k], best first
        (item -1, score -inf where fewer than top_k items are reachable). Call eval() first.

        `trie` is a steerrec.decoding.PrefixTrie built with this model's vocab offsets,
        e.g. `PrefixTrie.from_codes(codes, model.vocab.offsets, model.vocab.size)`.
        `item_bias` [B, n_items] (-inf = leave out) is added to item scores (steering).
        """
        from steerrec.decoding import constrained_beam_search

        state = self.encode(batch)
        return constrained_beam_search(
            self.step_fn,
            state["memory"].shape[0],
            trie,
            beam_size,
            top_k,
            start_tokens=self.start_tokens,
            state=state,
            reorder=self.reorder,
            device=state["memory"].device,
            item_bias=item_bias,
        )


def load_weights(model, directory: Path):
    path = directory / WEIGHTS_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no weights file in the model folder")
    load_model(model, str(path), strict=True)
    return model.eval()


def shift_right(target: torch.Tensor) -> torch.Tensor:
    """[B, L] target tokens -> decoder inputs [B, L]: BOS then target[:, :-1]."""
    start = torch.full_like(target[:, :1], BOS)
    return torch.cat([start, target[:, :-1]], dim=1)
