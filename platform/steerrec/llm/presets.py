"""Named engine configurations for known models: `preset("llama3-70b-instruct")`.

A preset is a starting point; every field can still be overridden in config
(`vllm.accelerator_type=H100`, `vllm.concurrency=4` on two 8-GPU nodes, ...).
"""

from __future__ import annotations

from collections.abc import Callable

from steerrec.llm.base import EngineConfig, VLLMSection


def llama3_70b_instruct() -> EngineConfig:
    """Llama-3-70B-Instruct: 4-way tensor parallel per engine (bf16 weights ~35 GB per
    80 GB GPU, the rest for KV cache), two engines per 8-GPU node."""
    return EngineConfig(
        engine="vllm",
        model="meta-llama/Meta-Llama-3-70B-Instruct",
        vllm=VLLMSection(
            tensor_parallel_size=4,
            accelerator_type="H100",  # cluster.yaml: p5.48xlarge, 8 x H100 80 GB
            concurrency=2,
            batch_size=128,
            max_model_len=8192,
        ),
    )


def llama3_8b_instruct() -> EngineConfig:
    """Llama-3-8B-Instruct: one GPU per engine."""
    return EngineConfig(
        engine="vllm",
        model="meta-llama/Meta-Llama-3-8B-Instruct",
        vllm=VLLMSection(tensor_parallel_size=1, concurrency=1, batch_size=64, max_model_len=8192),
    )


def qwen_0_5b_local() -> EngineConfig:
    """The default CPU model (Qwen2.5-Coder-0.5B-Instruct GGUF) through llama.cpp."""
    return EngineConfig(engine="local", model="default")


PRESETS: dict[str, Callable[[], EngineConfig]] = {
    "llama3-70b-instruct": llama3_70b_instruct,
    "llama3-8b-instruct": llama3_8b_instruct,
    "qwen2.5-0.5b-local": qwen_0_5b_local,
}


def preset(name: str) -> EngineConfig:
    """A fresh `EngineConfig` for a named preset."""
    if name not in PRESETS:
        raise ValueError(f"unknown engine preset {name!r}; known: {sorted(PRESETS)}")
    return PRESETS[name]()
