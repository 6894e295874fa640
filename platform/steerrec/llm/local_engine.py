"""CPU inference in a Ray Data actor pool; each actor holds one copy of the model.

Two backends:
  - llama.cpp (xllamacpp) for GGUF files; a JSON schema becomes a grammar, so replies
    always parse and match it.
  - transformers for Hugging Face folders: batched `generate` with left padding. No
    grammar here: a reply that breaks the schema is generated again (`local.json_retries`
    times) and kept as is after that, for the caller's parser to reject.
Rows with a seed are generated one at a time, so a row's text depends only on its prompt,
its parameters and its seed, not on the batch it landed in.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from steerrec.llm.base import EngineConfig, LocalSection, Processor, Sampling, read_messages, read_sampling

if TYPE_CHECKING:
    import pandas as pd

logger = logging.getLogger(__name__)


class Generation(NamedTuple):
    text: str
    num_input_tokens: int
    num_generated_tokens: int


def resolve_local_model(model: str, local: LocalSection) -> tuple[Path, str]:
    """(model path, backend): "default" is the Qwen 0.5B GGUF, assembled when missing."""
    if model == "default":
        from steerrec.llm.models import ensure_default_gguf

        path = ensure_default_gguf(local.cache_dir)
    else:
        path = Path(model).expanduser()
        if not path.exists():
            raise FileNotFoundError(f"model: local model {model!r} not found (a .gguf file or a HF folder)")
    backend = local.backend
    if backend == "auto":
        backend = "llama_cpp" if path.suffix == ".gguf" else "transformers"
    return path, backend


class LlamaCppBackend:
    """llama.cpp through xllamacpp's in-process server (OpenAI-style chat requests)."""

    def __init__(self, path: Path, local: LocalSection) -> None:
        import xllamacpp

        params = xllamacpp.CommonParams()
        params.model.path = str(path)
        params.n_ctx = local.n_ctx
        params.n_parallel = 1
        params.cpuparams.n_threads = local.num_threads
        params.cpuparams_batch.n_threads = local.num_threads
        self.server = xllamacpp.Server(params)

    def generate(self, messages: list[list[dict[str, str]]], samplings: list[Sampling]) -> list[Generation]:
        return [self._one(m, s) for m, s in zip(messages, samplings)]

    def _one(self, messages: list[dict[str, str]], s: Sampling) -> Generation:
        request: dict[str, Any] = dict(
            messages=messages,
            temperature=s.temperature,
            top_p=s.top_p,
            top_k=0,
            max_tokens=s.max_tokens,
        )
        if s.seed is not None:
            request["seed"] = s.seed
        if s.json_schema is not None:
            schema = {"name": "response", "schema": s.schema()}
            request["response_format"] = {"type": "json_schema", "json_schema": schema}
        response = self.server.handle_chat_completions(request)
        if "choices" not in response:
            raise RuntimeError(f"llama.cpp failed: {str(response)[:500]}")
        usage = response["usage"]
        text = response["choices"][0]["message"]["content"] or ""
        return Generation(text, int(usage["prompt_tokens"]), int(usage["completion_tokens"]))


class TransformersBackend:
    """A causal LM from a Hugging Face folder; prompts through the tokenizer's chat template."""

    def __init__(self, path: Path, local: LocalSection) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        torch.set_num_threads(local.num_threads)
        self.tokenizer = AutoTokenizer.from_pretrained(str(path))
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.model = AutoModelForCausalLM.from_pretrained(str(path), dtype=torch.float32).eval()
        self.json_retries = local.json_retries

    @classmethod
    def from_model(cls, model: Any, tokenizer: Any, json_retries: int = 0) -> TransformersBackend:
        """A backend around a causal LM already in memory (LangPTune's policy while it
        trains, its LoRA on); the tokenizer is switched to left padding."""
        backend = cls.__new__(cls)
        tokenizer.padding_side = "left"
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        backend.model, backend.tokenizer, backend.json_retries = model, tokenizer, json_retries
        return backend

    def generate(self, messages: list[list[dict[str, str]]], samplings: list[Sampling]) -> list[Generation]:
        prompts = [self.tokenizer.apply_chat_template(m, tokenize=False, add_generation_prompt=True) for m in messages]
        out: list[Generation | None] = [None] * len(prompts)
        for rows, s in _groups(samplings):
            for i, g in zip(rows, self._batch([prompts[i] for i in rows], s)):
                out[i] = g
        for i, s in enumerate(samplings):
            out[i] = self._retry_until_valid(prompts[i], s, out[i])
        return out  # type: ignore[return-value]

    def _retry_until_valid(self, prompt: str, s: Sampling, g: Generation) -> Generation:
        if s.json_schema is None:
            return g
        schema = s.schema()
        for attempt in range(1, self.json_retries + 1):
            if _matches(g.text, schema):
                return g
            seed = None if s.seed is None else s.seed + attempt
            g = self._batch([prompt], dataclasses.replace(s, seed=seed))[0]
        if not _matches(g.text, schema):
            logger.warning("reply still breaks the JSON schema after %d retries", self.json_retries)
        return g

    def _batch(self, prompts: list[str], s: Sampling) -> list[Generation]:
        import torch

        enc = self.tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
        kwargs: dict[str, Any] = dict(max_new_tokens=s.max_tokens, pad_token_id=self.tokenizer.pad_token_id)
        if s.temperature > 0:
            kwargs.update(do_sample=True, temperature=s.temperature, top_p=s.top_p, top_k=0)
        else:
            kwargs.update(do_sample=False)
        if s.seed is not None:
            torch.manual_seed(s.seed)
        with torch.no_grad():
            ids = self.model.generate(**enc, **kwargs)
        new = ids[:, enc["input_ids"].shape[1] :]
        eos = set(_as_list(self.model.generation_config.eos_token_id) or [self.tokenizer.eos_token_id])
        result = []
        for row, mask in zip(new.tolist(), enc["attention_mask"]):
            cut = next((j + 1 for j, t in enumerate(row) if t in eos), len(row))
            text = self.tokenizer.decode(row[:cut], skip_special_tokens=True)
            result.append(Generation(text, int(mask.sum()), cut))
        return result


def _groups(samplings: list[Sampling]) -> list[tuple[list[int], Sampling]]:
    """Rows that can share one `generate` call; a seeded row always goes alone."""
    groups: dict[Sampling, list[int]] = defaultdict(list)
    alone = []
    for i, s in enumerate(samplings):
        if s.seed is None:
            groups[s].append(i)
        else:
            alone.append(([i], s))
    return [(rows, s) for s, rows in groups.items()] + alone


def _matches(text: str, schema: dict[str, Any]) -> bool:
    import jsonschema

    try:
        jsonschema.validate(json.loads(text), schema)
    except (json.JSONDecodeError, jsonschema.ValidationError):
        return False
    return True


def _as_list(value: Any) -> list[int]:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


class LocalLLMActor:
    """A Ray Data callable class: a pandas batch in, the same batch with generations out."""

    def __init__(self, model: str, local: dict[str, Any]) -> None:
        section = LocalSection(**local)
        path, backend = resolve_local_model(model, section)
        logger.info("loading %s with %s (%d threads)", path, backend, section.num_threads)
        self.backend = LlamaCppBackend(path, section) if backend == "llama_cpp" else TransformersBackend(path, section)

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        messages = [read_messages(m) for m in batch["messages"]]
        samplings = [read_sampling(p) for p in batch["sampling_params"]]
        gens = self.backend.generate(messages, samplings)
        batch = batch.copy()
        batch["generated_text"] = [g.text for g in gens]
        batch["num_input_tokens"] = [g.num_input_tokens for g in gens]
        batch["num_generated_tokens"] = [g.num_generated_tokens for g in gens]
        return batch


def build_local_processor(cfg: EngineConfig) -> Processor:
    """A processor running `LocalLLMActor` in a fixed pool of `local.concurrency` actors."""
    local = cfg.local
    if cfg.model != "default" and not Path(cfg.model).expanduser().exists():
        raise FileNotFoundError(f"model: local model {cfg.model!r} not found (a .gguf file or a HF folder)")

    def processor(ds: Any) -> Any:
        import ray.data

        return ds.map_batches(
            LocalLLMActor,
            fn_constructor_kwargs=dict(model=cfg.model, local=dataclasses.asdict(local)),
            compute=ray.data.ActorPoolStrategy(size=local.concurrency),
            batch_size=local.batch_size,
            batch_format="pandas",
            num_cpus=local.num_threads,
            udf_modifying_row_count=False,
        )

    return processor
