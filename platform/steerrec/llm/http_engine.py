"""Any OpenAI-compatible chat endpoint through `ray.data.llm.HttpRequestProcessorConfig`.

Secrets stay out of config and logs: the config names environment variables
(`http.api_key_env`, `http.header_envs`); their values are read when the processor is
built and travel to the workers inside a session factory whose repr hides them.
"""

from __future__ import annotations

import json
import logging
import os
from typing import TYPE_CHECKING, Any

from steerrec.llm.base import EngineConfig, Processor, read_messages, read_sampling

if TYPE_CHECKING:
    import aiohttp
    from ray.data.llm import HttpRequestProcessorConfig

logger = logging.getLogger(__name__)

_INPUT_COLUMNS = "_steerrec_input_columns"


class SecretHeaderSession:
    """Callable that opens an aiohttp session sending headers whose values are never shown."""

    def __init__(self, headers: dict[str, str]) -> None:
        self._headers = dict(headers)

    def __call__(self) -> aiohttp.ClientSession:
        import aiohttp

        return aiohttp.ClientSession(headers=self._headers)

    def __repr__(self) -> str:
        return f"SecretHeaderSession(headers={sorted(self._headers)} values hidden)"


def secret_headers(cfg: EngineConfig) -> dict[str, str]:
    """Header values read from the environment variables the config names."""
    names = dict(cfg.http.header_envs)
    if cfg.http.api_key_env:
        names["Authorization"] = cfg.http.api_key_env
    headers = {}
    for header, env in names.items():
        value = os.environ.get(env)
        if not value:
            raise ValueError(f"http: environment variable {env!r} (for header {header!r}) is not set")
        headers[header] = f"Bearer {value}" if header == "Authorization" and env == cfg.http.api_key_env else value
    return headers


def http_processor_config(cfg: EngineConfig) -> HttpRequestProcessorConfig:
    """The `HttpRequestProcessorConfig` that `cfg.http` describes."""
    from ray.data.llm import HttpRequestProcessorConfig

    h = cfg.http
    headers = secret_headers(cfg)
    return HttpRequestProcessorConfig(
        url=h.url,
        qps=h.qps,
        max_retries=h.max_retries,
        concurrency=h.concurrency,
        batch_size=h.batch_size,
        session_factory=SecretHeaderSession(headers) if headers else None,
    )


def chat_payload(model: str, row: dict[str, Any]) -> dict[str, Any]:
    """The /v1/chat/completions request body for one row."""
    s = read_sampling(row.get("sampling_params"))
    payload: dict[str, Any] = dict(
        model=model,
        messages=read_messages(row["messages"]),
        temperature=s.temperature,
        top_p=s.top_p,
        max_tokens=s.max_tokens,
    )
    if s.seed is not None:
        payload["seed"] = s.seed
    if s.json_schema is not None:
        payload["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": "response", "schema": json.loads(s.json_schema), "strict": True},
        }
    return payload


class Preprocess:
    """Input row -> `payload` (a class so the model name travels to the workers)."""

    def __init__(self, model: str) -> None:
        self.model = model

    def __call__(self, row: dict[str, Any]) -> dict[str, Any]:
        return {"payload": chat_payload(self.model, row), _INPUT_COLUMNS: list(row)}


def postprocess(row: dict[str, Any]) -> dict[str, Any]:
    """Response row -> the input columns plus text and token counts."""
    response = row["http_response"]
    if "choices" not in response:
        raise RuntimeError(f"chat endpoint answered without 'choices': {str(response)[:500]}")
    usage = response.get("usage") or {}
    out = {name: row[name] for name in row[_INPUT_COLUMNS]}
    out["generated_text"] = response["choices"][0]["message"]["content"] or ""
    out["num_input_tokens"] = int(usage.get("prompt_tokens", 0))
    out["num_generated_tokens"] = int(usage.get("completion_tokens", 0))
    return out


def build_http_processor(cfg: EngineConfig) -> Processor:
    """A `ray.data.llm` HTTP processor sending each row as one chat completion request."""
    from ray.data.llm import build_processor

    config = http_processor_config(cfg)
    logger.info(
        "HTTP processor: url=%s model=%s qps=%s retries=%d workers=%d headers from env %s",
        cfg.http.url,
        cfg.model,
        cfg.http.qps,
        cfg.http.max_retries,
        cfg.http.concurrency,
        sorted([*cfg.http.header_envs.values(), *([cfg.http.api_key_env] if cfg.http.api_key_env else [])]),
    )
    return build_processor(config, preprocess=Preprocess(cfg.model), postprocess=postprocess)
