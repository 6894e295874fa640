"""The vLLM engine through `ray.data.llm`: GPU engines in a Ray Data actor pool.

`ray.data.llm` imports without vLLM; vLLM itself is imported only by the engine actors
that `build_vllm_processor` starts, so nothing here needs it on the driver.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from steerrec.llm.base import EngineConfig, Processor, read_sampling

if TYPE_CHECKING:
    from ray.data.llm import vLLMEngineProcessorConfig

logger = logging.getLogger(__name__)

# the user's sampling_params, kept aside while the column holds vLLM's form
_ORIGINAL_SAMPLING = "_steerrec_sampling_params"
_INPUT_COLUMNS = "_steerrec_input_columns"


def vllm_processor_config(cfg: EngineConfig) -> vLLMEngineProcessorConfig:
    """The `vLLMEngineProcessorConfig` that `cfg.vllm` describes."""
    from ray.data.llm import vLLMEngineProcessorConfig

    v = cfg.vllm
    engine_kwargs = dict(
        tensor_parallel_size=v.tensor_parallel_size,
        pipeline_parallel_size=v.pipeline_parallel_size,
        enable_prefix_caching=v.enable_prefix_caching,
        max_model_len=v.max_model_len,
        gpu_memory_utilization=v.gpu_memory_utilization,
        dtype=v.dtype,
    )
    clash = sorted(set(engine_kwargs) & set(v.engine_kwargs))
    if clash:
        raise ValueError(f"vllm.engine_kwargs repeats {clash}: set them as vllm.<name> instead")
    engine_kwargs.update(v.engine_kwargs)
    if v.max_lora_rank:
        engine_kwargs.update(enable_lora=True, max_lora_rank=v.max_lora_rank, max_loras=v.max_loras)
    return vLLMEngineProcessorConfig(
        model_source=cfg.model,
        engine_kwargs=engine_kwargs,
        batch_size=v.batch_size,
        # an int n would give an autoscaling pool of 1..n engines; (n, n) starts all n at once
        concurrency=(v.concurrency, v.concurrency),
        accelerator_type=v.accelerator_type,
        log_engine_metrics=v.log_engine_metrics,
        dynamic_lora_loading_path=v.lora_path or None,
    )


def lora_rows(rows: list[dict[str, Any]], adapter: str) -> list[dict[str, Any]]:
    """`rows` generated with a LoRA: ray.data.llm's vLLM stage turns a row's `model` (when it
    differs from the processor's model) into a LoRARequest for the adapter of that name, a
    subfolder of vllm.lora_path, or with no lora_path the adapter folder itself; an engine
    loads each name once, so a new adapter needs a new name."""
    return [{**r, "model": adapter} for r in rows]


def vllm_sampling_params(params: Any) -> dict[str, Any]:
    """Our `sampling_params` cell in vLLM's form: the schema goes to `structured_outputs.json`."""
    s = read_sampling(params)
    out: dict[str, Any] = dict(temperature=s.temperature, top_p=s.top_p, max_tokens=s.max_tokens)
    if s.seed is not None:
        out["seed"] = s.seed
    if s.json_schema is not None:
        # vllm.sampling_params.StructuredOutputsParams(json=...) takes the schema as JSON text
        out["structured_outputs"] = {"json": s.json_schema}
    return out


def preprocess(row: dict[str, Any]) -> dict[str, Any]:
    """Input row -> the columns the vLLM stages read (`messages`, `sampling_params`)."""
    return {
        "sampling_params": vllm_sampling_params(row.get("sampling_params")),
        _ORIGINAL_SAMPLING: row.get("sampling_params"),
        _INPUT_COLUMNS: list(row),
    }


def postprocess(row: dict[str, Any]) -> dict[str, Any]:
    """Engine row -> the input columns plus text and token counts."""
    out = {name: row[name] for name in row[_INPUT_COLUMNS] if name != "sampling_params"}
    out["sampling_params"] = row[_ORIGINAL_SAMPLING]
    out["generated_text"] = row["generated_text"]
    out["num_input_tokens"] = int(row["num_input_tokens"])
    out["num_generated_tokens"] = int(row["num_generated_tokens"])
    return out


def build_vllm_processor(cfg: EngineConfig) -> Processor:
    """A `ray.data.llm` vLLM processor (chat template, tokenize, engine, detokenize)."""
    from ray.data.llm import build_processor

    config = vllm_processor_config(cfg)
    logger.info(
        "vLLM processor: model=%s engines=%d tp=%d pp=%d accelerator=%s batch=%d",
        cfg.model,
        cfg.vllm.concurrency,
        cfg.vllm.tensor_parallel_size,
        cfg.vllm.pipeline_parallel_size,
        cfg.vllm.accelerator_type,
        cfg.vllm.batch_size,
    )
    return build_processor(config, preprocess=preprocess, postprocess=postprocess)
