"""The causal LM behind alignment: build it, add/merge LoRA, score candidates, generate.

Sources (`ModelConfig.source`):
- ``tiny``: a random-init Llama/Qwen2 built from sizes, with a byte-level BPE tokenizer
  trained on the prompts (`build_tokenizer`); tests and CPU benchmarks (trained from
  scratch, so its SFT trains every weight).
- ``gguf``: Qwen2.5-Coder-0.5B-Instruct (Q4_K_M GGUF, `steerrec.llm.models`) dequantised
  into a cached HF folder once (`dequantized`, needs the `gguf` package).
- ``hf``: any causal LM by hub name or folder, e.g. ``meta-llama/Meta-Llama-3-8B`` or
  ``Qwen/Qwen2-7B`` on a GPU cluster.

Qwen 0.5B here: ``model.source=gguf model.dtype=bfloat16 lr=1e-4`` (LoRA SFT; peft keeps
the adapters in fp32); on 2 CPU cores that checks the pipeline, it does not reproduce the
paper (speeds: benchmarks/alignment_movielens.py and the README). On a GPU: Llama-3-8B in
bf16, LoRA r 8 / alpha 32 on q/k/v/o, ``model.source=hf model.name=meta-llama/Meta-Llama-3-8B
model.dtype=bfloat16 use_gpu=true lr=1e-5 batch_size=4 grad_accum=8`` on one 80 GB GPU;
Qwen2-7B is the same with ``model.name=Qwen/Qwen2-7B``. The README sizes an epoch there
(an estimate: no GPU run yet).

The reference policy for DPO-style losses is the SFT model: SFT's LoRA is merged into the
base weights (`merge_lora`) and alignment trains a fresh LoRA, so `reference(model)`
(the adapter disabled) is exactly the SFT model, with no second copy in memory.
Completions are " " + title + EOS, tokenised apart from the prompt and appended to it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

SOURCES = ("tiny", "gguf", "hf")
SPECIALS = ("<pad>", "<eos>")


def _default_targets() -> list[str]:
    return ["q_proj", "k_proj", "v_proj", "o_proj"]


@dataclass
class ModelConfig:
    source: str = "tiny"  # tiny | gguf | hf
    name: str = ""  # hf: hub name or folder; gguf: path of a .gguf ("" = the default Qwen 0.5B)
    arch: str = "llama"  # tiny only: llama | qwen2
    hidden_size: int = 64
    num_layers: int = 2
    num_heads: int = 4
    intermediate_size: int = 128
    vocab_size: int = 1024  # tiny only: BPE vocabulary trained on the prompts
    dtype: str = "float32"
    lora_r: int = 8
    lora_alpha: int = 32
    lora_dropout: float = 0.0
    lora_targets: list[str] = field(default_factory=_default_targets)

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise ValueError(f"model.source must be one of {SOURCES}, got {self.source!r}")
        if self.arch not in ("llama", "qwen2"):
            raise ValueError(f"model.arch must be llama or qwen2, got {self.arch!r}")
        if self.source == "hf" and not self.name:
            raise ValueError("model.name is required for model.source=hf")
        for name in ("hidden_size", "num_layers", "num_heads", "intermediate_size", "vocab_size", "lora_r"):
            if getattr(self, name) < 1:
                raise ValueError(f"model.{name} must be >= 1, got {getattr(self, name)}")
        if self.hidden_size % self.num_heads:
            raise ValueError(f"model.hidden_size {self.hidden_size} is not a multiple of num_heads {self.num_heads}")
        if self.dtype not in ("float32", "bfloat16", "float16"):
            raise ValueError(f"model.dtype must be float32, bfloat16 or float16, got {self.dtype!r}")


def build_tokenizer(texts: Sequence[str], vocab_size: int):
    """A byte-level BPE tokenizer (reversible) trained on `texts`, with <pad> and <eos>."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIALS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token=SPECIALS[0], eos_token=SPECIALS[1])


def build_tiny(cfg: ModelConfig, tokenizer, seed: int = 0):
    """A random-init causal LM of `cfg`'s sizes over `tokenizer`'s vocabulary."""
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig, Qwen2Config

    kind = LlamaConfig if cfg.arch == "llama" else Qwen2Config
    config = kind(
        vocab_size=len(tokenizer),
        hidden_size=cfg.hidden_size,
        intermediate_size=cfg.intermediate_size,
        num_hidden_layers=cfg.num_layers,
        num_attention_heads=cfg.num_heads,
        num_key_value_heads=cfg.num_heads,
        max_position_embeddings=4096,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=None,
        eos_token_id=tokenizer.eos_token_id,
        tie_word_embeddings=True,
    )
    torch.manual_seed(seed)
    return AutoModelForCausalLM.from_config(config, dtype=getattr(torch, cfg.dtype))


def load_pretrained(cfg: ModelConfig, path: str | Path | None = None):
    """(model, tokenizer) for `gguf`/`hf` sources, or a saved tiny model from `path`."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    dtype = getattr(torch, cfg.dtype)
    if path is not None:
        where = str(path)
    elif cfg.source == "gguf":
        from steerrec.llm.models import dequantized, ensure_default_gguf

        where = str(dequantized(Path(cfg.name) if cfg.name else ensure_default_gguf()))
    elif cfg.source == "hf":
        where = cfg.name
    else:
        raise ValueError("a tiny model is built with build_tiny, or loaded from a saved run folder")
    tokenizer = AutoTokenizer.from_pretrained(where)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(where, dtype=dtype)
    return model, tokenizer


def add_lora(model, cfg: ModelConfig):
    """A fresh LoRA (B = 0, so the wrapped model starts equal to `model`) on cfg.lora_targets."""
    from peft import LoraConfig, get_peft_model

    lora = LoraConfig(
        r=cfg.lora_r,
        lora_alpha=cfg.lora_alpha,
        lora_dropout=cfg.lora_dropout,
        target_modules=list(cfg.lora_targets),
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, lora)


def merge_lora(peft_model):
    """The base model with the LoRA folded into its weights (peft's merge_and_unload)."""
    return peft_model.merge_and_unload()


@contextmanager
def reference(model) -> Iterator[Any]:
    """The reference policy: `model` with its adapter disabled, gradients off."""
    import torch

    with model.disable_adapter(), torch.no_grad():
        yield model


def encode(
    tokenizer, prompts: Sequence[str], titles: Sequence[Sequence[str]]
) -> tuple[list[list[int]], list[list[list[int]]]]:
    """Prompt ids [B] and completion ids [B][C] (" " + title + EOS) for candidate titles."""
    prompt_ids = [tokenizer(p, add_special_tokens=True)["input_ids"] for p in prompts]
    eos = tokenizer.eos_token_id
    completions = [[tokenizer(" " + t, add_special_tokens=False)["input_ids"] + [eos] for t in row] for row in titles]
    return prompt_ids, completions


def completion_logps(model, prompts: list[list[int]], completions: list[list[int]]):
    """Per-token log-probs [N, L] of each completion after its prompt, and the mask [N, L].

    One right-padded forward over the N concatenated sequences.
    """
    import torch

    device = _device(model)
    rows = [p + c for p, c in zip(prompts, completions)]
    width, length = max(map(len, rows)), max(map(len, completions))
    ids = torch.zeros(len(rows), width, dtype=torch.long)
    attn = torch.zeros(len(rows), width, dtype=torch.long)
    targets = torch.zeros(len(rows), length, dtype=torch.long)
    mask = torch.zeros(len(rows), length, dtype=torch.bool)
    start = torch.zeros(len(rows), dtype=torch.long)
    for n, (p, c) in enumerate(zip(prompts, completions)):
        ids[n, : len(p) + len(c)] = torch.tensor(p + c)
        attn[n, : len(p) + len(c)] = 1
        targets[n, : len(c)], mask[n, : len(c)] = torch.tensor(c), True
        start[n] = len(p) - 1  # the logit at position len(p) - 1 predicts the first completion token
    decoder, head = _decoder_and_head(model)
    hidden = decoder(input_ids=ids.to(device), attention_mask=attn.to(device)).last_hidden_state  # [N, S, H]
    pos = (start[:, None] + torch.arange(length)).clamp(max=width - 1).to(device)  # [N, L]
    picked = head(hidden.gather(1, pos[:, :, None].expand(-1, -1, hidden.shape[-1])))  # [N, L, V]
    logps = torch.log_softmax(picked.float(), dim=-1).gather(2, targets.to(device)[:, :, None])[:, :, 0]
    return logps.masked_fill(~mask.to(device), 0.0), mask.to(device)


def candidate_logps(model, prompts: list[list[int]], candidates: list[list[list[int]]], share_prompt: bool = True):
    """Sequence log-probs of every candidate given its prompt: (sum [B, C], mean [B, C]).

    share_prompt: run each prompt once and reuse its KV cache for its C candidates;
    otherwise one batched forward over all B * C (prompt + candidate) rows.
    """
    import torch
    import torch.nn.functional as F

    n_cand = {len(c) for c in candidates}
    if len(n_cand) != 1:
        raise ValueError(f"every example needs the same number of candidates, got {sorted(n_cand)}")
    c = n_cand.pop()
    if share_prompt:
        parts = [_shared_prompt_logps(model, p, cands) for p, cands in zip(prompts, candidates)]
        width = max(lp.shape[1] for lp, _ in parts)  # pad every [C, L_b] to [C, width]
        logps = torch.cat([F.pad(lp, (0, width - lp.shape[1])) for lp, _ in parts])
        mask = torch.cat([F.pad(m, (0, width - m.shape[1])) for _, m in parts])
    else:
        flat_p = [p for p, cands in zip(prompts, candidates) for _ in cands]
        logps, mask = completion_logps(model, flat_p, [x for cands in candidates for x in cands])
    total = logps.sum(dim=1).view(len(prompts), c)  # [B, C]
    return total, total / mask.sum(dim=1).view(len(prompts), c)


def _shared_prompt_logps(model, prompt: list[int], cands: list[list[int]]):
    """[C, L] token log-probs and mask of C candidates after one prompt, prompt KV reused."""
    import torch

    from steerrec.models.seq2seq import cache_arg

    device = _device(model)
    out = model(input_ids=torch.tensor([prompt], device=device), use_cache=True, logits_to_keep=1)
    cache = getattr(out, cache_arg())
    cache.batch_repeat_interleave(len(cands))
    length, p = max(map(len, cands)), len(prompt)
    ids = torch.zeros(len(cands), length, dtype=torch.long)
    mask = torch.zeros(len(cands), length, dtype=torch.bool)
    for k, cand in enumerate(cands):
        ids[k, : len(cand)], mask[k, : len(cand)] = torch.tensor(cand), True
    ids, mask = ids.to(device), mask.to(device)
    attn = torch.cat([torch.ones(len(cands), p, dtype=torch.long, device=device), mask.long()], dim=1)
    pos = (p + torch.arange(length, device=device))[None].expand(len(cands), -1)
    logits = model(input_ids=ids, attention_mask=attn, position_ids=pos, **{cache_arg(): cache}).logits
    first = out.logits[:, -1:].expand(len(cands), -1, -1)  # [C, 1, V] predicts each first token
    logits = torch.cat([first, logits[:, :-1]], dim=1)  # [C, L, V]
    logps = torch.log_softmax(logits.float(), dim=-1).gather(2, ids[:, :, None])[:, :, 0]
    return logps.masked_fill(~mask, 0.0), mask


def generate_titles(
    model, tokenizer, prompts: Sequence[str], max_new_tokens: int = 32, batch_size: int = 16
) -> list[str]:
    """Greedy answers after each prompt (left-padded batches): the first line before EOS, stripped."""
    import torch

    device = _device(model)
    eos, pad = tokenizer.eos_token_id, tokenizer.pad_token_id
    answers: list[str] = []
    for start in range(0, len(prompts), batch_size):
        ids = [tokenizer(p, add_special_tokens=True)["input_ids"] for p in prompts[start : start + batch_size]]
        width = max(map(len, ids))
        x = torch.full((len(ids), width), pad, dtype=torch.long)
        attn = torch.zeros(len(ids), width, dtype=torch.long)
        for n, row in enumerate(ids):
            x[n, width - len(row) :], attn[n, width - len(row) :] = torch.tensor(row), 1
        with torch.no_grad():
            out = model.generate(
                input_ids=x.to(device),
                attention_mask=attn.to(device),
                max_new_tokens=max_new_tokens,
                do_sample=False,
                eos_token_id=eos,
                pad_token_id=pad,
            )
        for row in out[:, width:].tolist():
            cut = row.index(eos) if eos in row else len(row)
            text = tokenizer.decode(row[:cut], skip_special_tokens=True)
            answers.append(text.split("\n", 1)[0].strip())  # a title is one line
    return answers


def _decoder_and_head(model):
    """The transformer body and the LM head of a (peft-wrapped) causal LM.

    The head runs only at the completion positions: over a 150k vocabulary it is a quarter
    of a 0.5B model's forward, and its [N, S, V] logits the largest tensor of a step.
    Adapters live inside the body's layers, so peft's enable/disable still applies.
    """
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return base.get_decoder(), base.get_output_embeddings()


def _device(model):
    return next(model.parameters()).device
