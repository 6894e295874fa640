"""The adapter hand-over's bytes (no Ray): a trained LoRA serialised to safetensors and loaded
into another copy of the same base makes that copy compute what the trainer's does."""

from __future__ import annotations

import pytest

pytest.importorskip("peft")

import torch

from steerrec.alignment import model as M
from steerrec.langptune.ray_program import adapter_bytes, load_adapter_bytes


def _policy(cfg: M.ModelConfig, tok):
    return M.add_lora(M.build_tiny(cfg, tok, seed=0), cfg)


def test_adapter_bytes_carry_the_trained_lora_and_nothing_else():
    cfg = M.ModelConfig(hidden_size=16, num_layers=1, num_heads=2, intermediate_size=32, vocab_size=120)
    tok = M.build_tokenizer(["a rose soap", "a cedar candle", "mint lotion"] * 5, cfg.vocab_size)
    trainer, generator = _policy(cfg, tok), _policy(cfg, tok)
    with torch.no_grad():  # "train" the trainer's LoRA: B = 0 at init, so outputs would not differ
        for name, p in trainer.named_parameters():
            if "lora_B" in name:
                p.add_(0.5 * torch.randn_like(p))
    ids = torch.tensor([tok("a rose candle")["input_ids"]])
    assert not torch.allclose(trainer(ids).logits, generator(ids).logits)
    data = adapter_bytes(trainer)
    lora = sum(p.numel() for n, p in trainer.named_parameters() if "lora_" in n)
    assert lora * 4 < len(data) < lora * 4 + 4096  # float32 LoRA weights plus a small header
    load_adapter_bytes(generator, data)
    assert torch.allclose(trainer(ids).logits, generator(ids).logits)
    assert adapter_bytes(generator) == data
    other = M.add_lora(M.build_tiny(cfg, tok, seed=0), M.ModelConfig(**{**cfg.__dict__, "lora_r": 4}))
    with pytest.raises(RuntimeError, match="size mismatch"):
        load_adapter_bytes(other, data)
