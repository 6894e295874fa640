"""LLM engines behind one interface: vllm (ray.data.llm), http (OpenAI-compatible), local (CPU).

`build_engine(EngineConfig(...))` returns a processor: a Ray Dataset with `messages` and
`sampling_params` in, the same rows with `generated_text`, `num_input_tokens` and
`num_generated_tokens` out. Importing this package imports neither Ray nor vLLM.
"""

from steerrec.llm.base import (
    OUTPUT_COLUMNS,
    EngineConfig,
    HttpSection,
    LocalSection,
    VLLMSection,
    build_engine,
    make_sampling_params,
    read_sampling,
)

__all__ = [
    "OUTPUT_COLUMNS",
    "EngineConfig",
    "HttpSection",
    "LocalSection",
    "VLLMSection",
    "build_engine",
    "make_sampling_params",
    "read_sampling",
]
