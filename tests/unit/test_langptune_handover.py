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


def test_vllm_writer_hands_over_a_peft_folder_and_names_it_in_the_rows(tmp_path):
    from peft import PeftModel

    from steerrec.config import load
    from steerrec.langptune.train import LangPTuneConfig
    from steerrec.langptune.vllm_writer import VLLMProfileWriter
    from steerrec.llm.base import EngineConfig

    cfg = M.ModelConfig(hidden_size=16, num_layers=1, num_heads=2, intermediate_size=32, vocab_size=120)
    tok = M.build_tokenizer(["a rose soap", "a cedar candle"] * 5, cfg.vocab_size)
    policy = _policy(cfg, tok)
    engine = load(EngineConfig, None, ["engine=vllm", "model=/models/base", "vllm.max_lora_rank=8"])
    writer = VLLMProfileWriter(engine, tmp_path / "adapters")
    first, second = writer.sync(policy), writer.sync(policy)
    folder = tmp_path / "adapters" / "langptune_001"
    assert writer.adapter == str(folder) and second["bytes"] == first["bytes"] > 0  # a new name per hand-over
    assert {"adapter_config.json", "adapter_model.safetensors"} <= {f.name for f in folder.iterdir()}
    loaded = PeftModel.from_pretrained(M.build_tiny(cfg, tok, seed=0), str(folder))  # what vLLM reads
    assert adapter_bytes(loaded) == adapter_bytes(policy)
    flags = {"data": "d", "out": "o"}
    with pytest.raises(ValueError, match="policy.model.source=hf"):
        load(LangPTuneConfig, None, ["ray.engine=vllm"], flags)
    with pytest.raises(ValueError, match="ray.vllm.max_lora_rank"):
        load(LangPTuneConfig, None, ["ray.engine=vllm", "policy.model.source=hf", "policy.model.name=m"], flags)
