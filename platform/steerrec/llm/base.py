"""One interface for every LLM engine: a processor that maps a Ray Dataset to a Ray Dataset.

Input columns (the ones `ray.data.llm` uses):
  - ``messages``: list of ``{"role", "content"}`` chat messages;
  - ``sampling_params``: ``{"temperature", "top_p", "max_tokens", "seed", "json_schema"}``;
    ``json_schema`` is an optional JSON schema (a JSON string, see `make_sampling_params`)
    that the reply must follow.
Output: every input column, plus ``generated_text``, ``num_input_tokens`` and
``num_generated_tokens``.

The engine and the model are configuration (`EngineConfig`), never code:

    processor = build_engine(EngineConfig(engine="local", model="default"))
    out = processor(ds)
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import ray.data

ENGINES = ("vllm", "http", "local")
LORA_BUCKETS = ("s3://", "gs://", "abfss://", "azure://")  # what ray.data.llm downloads adapters from
LOCAL_BACKENDS = ("auto", "llama_cpp", "transformers")
INPUT_COLUMNS = ("messages", "sampling_params")
OUTPUT_COLUMNS = ("generated_text", "num_input_tokens", "num_generated_tokens")
SAMPLING_KEYS = ("temperature", "top_p", "max_tokens", "seed", "json_schema")

Processor = Callable[["ray.data.Dataset"], "ray.data.Dataset"]


def _positive(section: str, **values: float | None) -> None:
    for name, value in values.items():
        if value is not None and value < 1:
            raise ValueError(f"{section}.{name} must be >= 1, got {value}")


@dataclass
class VLLMSection:
    """ray.data.llm's vLLM processor: parallelism, placement and engine options."""

    tensor_parallel_size: int = 1  # GPUs per engine that split each layer
    pipeline_parallel_size: int = 1  # GPUs per engine that split the layer stack
    accelerator_type: str | None = None  # Ray accelerator type, e.g. "A100-80G", "H100"
    concurrency: int = 1  # number of engines
    batch_size: int = 64  # rows per Ray Data batch sent to an engine
    enable_prefix_caching: bool = True  # prompts share a long instruction prefix
    max_model_len: int = 8192
    gpu_memory_utilization: float = 0.9
    dtype: str = "auto"
    log_engine_metrics: bool = False  # True needs Ray Serve's metrics export
    engine_kwargs: dict[str, Any] = field(default_factory=dict)  # more vLLM engine args
    # LoRA per request (a row's `model` names its adapter; steerrec.llm.vllm_engine.lora_rows):
    max_lora_rank: int = 0  # > 0 turns LoRA on (vLLM's enable_lora, max_lora_rank)
    max_loras: int = 1  # adapters an engine holds on the GPU at once
    # ray.data.llm's dynamic_lora_loading_path: a bucket whose subfolders are adapters, rows
    # naming a subfolder; "" = rows name an adapter folder every engine node can read
    lora_path: str = ""

    def __post_init__(self) -> None:
        _positive(
            "vllm",
            tensor_parallel_size=self.tensor_parallel_size,
            pipeline_parallel_size=self.pipeline_parallel_size,
            concurrency=self.concurrency,
            batch_size=self.batch_size,
            max_model_len=self.max_model_len,
        )
        if not 0 < self.gpu_memory_utilization <= 1:
            raise ValueError(f"vllm.gpu_memory_utilization must be in (0, 1], got {self.gpu_memory_utilization}")
        _positive("vllm", max_loras=self.max_loras)
        if self.max_lora_rank < 0:
            raise ValueError(f"vllm.max_lora_rank must be >= 0 (0: no LoRA), got {self.max_lora_rank}")
        if self.lora_path and not self.lora_path.startswith(LORA_BUCKETS):
            raise ValueError(f"vllm.lora_path must start with one of {LORA_BUCKETS}, got {self.lora_path!r}")
        if self.lora_path and not self.max_lora_rank:
            raise ValueError(f"vllm.lora_path={self.lora_path!r} needs vllm.max_lora_rank > 0")


@dataclass
class HttpSection:
    """Any OpenAI-compatible /v1/chat/completions endpoint."""

    url: str = "https://api.openai.com/v1/chat/completions"
    api_key_env: str | None = None  # env var holding the key, sent as "Authorization: Bearer"
    header_envs: dict[str, str] = field(default_factory=dict)  # header name -> env var name
    qps: int | None = None  # request rate limit, applied per worker batch; None: no limit
    max_retries: int = 3
    concurrency: int = 1  # Ray Data workers sending requests
    batch_size: int = 16

    def __post_init__(self) -> None:
        if not self.url.startswith(("http://", "https://")):
            raise ValueError(f"http.url must start with http:// or https://, got {self.url!r}")
        _positive("http", qps=self.qps, concurrency=self.concurrency, batch_size=self.batch_size)
        if self.max_retries < 0:
            raise ValueError(f"http.max_retries must be >= 0, got {self.max_retries}")


@dataclass
class LocalSection:
    """CPU inference in a Ray Data actor pool: llama.cpp for GGUF, transformers for HF folders."""

    backend: str = "auto"  # auto: llama_cpp for a .gguf file or "default", else transformers
    concurrency: int = 1  # actors, each holding one copy of the model
    batch_size: int = 4
    num_threads: int = 2  # CPU threads (and Ray CPUs) per actor
    n_ctx: int = 4096  # llama.cpp context length
    json_retries: int = 2  # transformers only: regenerate a reply that breaks the schema
    cache_dir: str = "~/.cache/steerrec/models"  # where model "default" is assembled

    def __post_init__(self) -> None:
        if self.backend not in LOCAL_BACKENDS:
            raise ValueError(f"local.backend must be one of {LOCAL_BACKENDS}, got {self.backend!r}")
        _positive(
            "local",
            concurrency=self.concurrency,
            batch_size=self.batch_size,
            num_threads=self.num_threads,
            n_ctx=self.n_ctx,
        )
        if self.json_retries < 0:
            raise ValueError(f"local.json_retries must be >= 0, got {self.json_retries}")


@dataclass
class EngineConfig:
    """Which engine runs which model; only the section of the chosen engine is used."""

    engine: str = "local"
    model: str = "default"  # HF id or path; an API model name for http; "default" for local
    vllm: VLLMSection = field(default_factory=VLLMSection)
    http: HttpSection = field(default_factory=HttpSection)
    local: LocalSection = field(default_factory=LocalSection)

    def __post_init__(self) -> None:
        if self.engine not in ENGINES:
            raise ValueError(f"engine must be one of {ENGINES}, got {self.engine!r}")
        if not self.model:
            raise ValueError("model must be a non-empty model name or path")


def build_engine(cfg: EngineConfig) -> Processor:
    """The processor for `cfg.engine`: Dataset of messages + sampling_params -> generations."""
    if cfg.engine == "vllm":
        from steerrec.llm.vllm_engine import build_vllm_processor

        return build_vllm_processor(cfg)
    if cfg.engine == "http":
        from steerrec.llm.http_engine import build_http_processor

        return build_http_processor(cfg)
    from steerrec.llm.local_engine import build_local_processor

    return build_local_processor(cfg)


@dataclass(frozen=True)
class Sampling:
    """Checked sampling parameters of one row."""

    temperature: float = 1.0
    top_p: float = 1.0
    max_tokens: int = 256
    seed: int | None = None
    json_schema: str | None = None  # JSON text of the schema

    def schema(self) -> dict[str, Any] | None:
        return None if self.json_schema is None else json.loads(self.json_schema)


def make_sampling_params(
    temperature: float = 1.0,
    top_p: float = 1.0,
    max_tokens: int = 256,
    seed: int | None = None,
    json_schema: Mapping[str, Any] | str | None = None,
) -> dict[str, Any]:
    """A `sampling_params` cell; the schema is stored as JSON text so Arrow keeps it intact."""
    schema = json_schema if json_schema is None or isinstance(json_schema, str) else json.dumps(json_schema)
    params = dict(temperature=temperature, top_p=top_p, max_tokens=max_tokens, seed=seed, json_schema=schema)
    read_sampling(params)
    return params


def read_sampling(params: Mapping[str, Any] | None) -> Sampling:
    """Check a `sampling_params` cell; errors name the field and the value."""
    params = dict(params or {})
    unknown = sorted(set(params) - set(SAMPLING_KEYS))
    if unknown:
        raise ValueError(f"sampling_params: unknown key(s) {unknown}; known: {list(SAMPLING_KEYS)}")
    values = {k: v for k, v in params.items() if v is not None and not _is_nan(v)}
    s = Sampling(
        temperature=float(values.get("temperature", 1.0)),
        top_p=float(values.get("top_p", 1.0)),
        max_tokens=int(values.get("max_tokens", 256)),
        seed=int(values["seed"]) if "seed" in values else None,
        json_schema=_schema_text(values.get("json_schema")),
    )
    if s.temperature < 0:
        raise ValueError(f"sampling_params.temperature must be >= 0, got {s.temperature}")
    if not 0 < s.top_p <= 1:
        raise ValueError(f"sampling_params.top_p must be in (0, 1], got {s.top_p}")
    if s.max_tokens < 1:
        raise ValueError(f"sampling_params.max_tokens must be >= 1, got {s.max_tokens}")
    return s


def read_messages(messages: Any) -> list[dict[str, str]]:
    """Chat messages as plain dicts (Ray hands them over as numpy arrays of dicts)."""
    out = []
    for i, m in enumerate(list(messages) if messages is not None else []):
        if not isinstance(m, Mapping) or "role" not in m or "content" not in m:
            raise ValueError(f"messages[{i}] must be a mapping with 'role' and 'content', got {m!r}")
        out.append({"role": str(m["role"]), "content": str(m["content"])})
    if not out:
        raise ValueError("messages must hold at least one {role, content} message")
    return out


def _schema_text(schema: Any) -> str | None:
    if schema is None:
        return None
    if isinstance(schema, str):
        try:
            parsed = json.loads(schema)
        except json.JSONDecodeError as exc:
            raise ValueError(f"sampling_params.json_schema is not valid JSON: {exc}") from exc
    else:
        parsed = schema
    if not isinstance(parsed, Mapping):
        raise ValueError(f"sampling_params.json_schema must be a JSON object, got {schema!r}")
    return schema if isinstance(schema, str) else json.dumps(parsed)


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)
