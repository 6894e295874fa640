"""Local engine speed: steerrec's local engine through Ray Data against a batch-1
transformers `generate` loop (the published implementation's approach), same model and prompts.

    .venv/bin/python benchmarks/local_engine_speed.py --prompts 16 --max-tokens 64

Prompts: the preference prompts (`preference_messages`) of the latest key of the first
--prompts users of the built-in world. The model: the default Qwen2.5-Coder-0.5B-Instruct
Q4_K_M GGUF, and the same weights dequantized by transformers (fp32, saved once under
--cache-dir), so that every approach runs the same function:
  - reference: `for prompt in prompts: model.generate(...)`, batch 1, fp32 weights;
  - engine, llama.cpp: the GGUF through `build_engine(EngineConfig(engine="local"))`;
  - engine, transformers: the dequantized folder through the same engine (batched generate).
Greedy decoding by default (--temperature 0), no JSON schema (the reference has no
grammar), --threads CPU threads everywhere. Every timed step runs in a Ray worker process
(Ray starts workers at a lower CPU priority, nice 15 here), so that on a shared machine all
approaches compete alike. "load" is the model load, timed in a Ray task; "steady" is the
end-to-end wall time less that load (the Ray Data run loads its own copy in its actor).
Rates and ratios use steady seconds.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import tempfile
import time
from pathlib import Path

from steerrec.cluster import init_ray
from steerrec.data.prepare import PrepareConfig, prepare
from steerrec.llm import EngineConfig, LocalSection, build_engine, make_sampling_params
from steerrec.llm.local_engine import LocalLLMActor
from steerrec.llm.models import DEFAULT_CACHE_DIR, dequantized, ensure_default_gguf
from steerrec.preferences.approximate import build_requests
from steerrec.preferences.prompts import PromptConfig


def world_prompts(n: int) -> list[list[dict]]:
    """Chat messages of the latest key of each of the first `n` users of the default world."""
    data = tempfile.mkdtemp(prefix="steerrec-world-")
    prepare(PrepareConfig(format="world", out=data))
    latest: dict[str, list[dict]] = {}
    for request in build_requests(data, PromptConfig(), limit_users=n):
        latest[request["user_id"]] = request["messages"]
    return [latest[u] for u in sorted(latest)]


def sampling(i: int, args: argparse.Namespace) -> dict:
    """Row i's sampling: greedy, or seeded sampling (seed + i) when --temperature > 0."""
    if args.temperature == 0:
        return make_sampling_params(temperature=0.0, max_tokens=args.max_tokens)
    return make_sampling_params(temperature=args.temperature, top_p=0.9, max_tokens=args.max_tokens, seed=args.seed + i)


def reference(folder: Path, prompts: list[list[dict]], args: argparse.Namespace) -> dict:
    """Batch-1 transformers `generate`, one prompt after another."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    tok = AutoTokenizer.from_pretrained(str(folder))
    model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32).eval()
    load = time.perf_counter() - started
    eos = model.generation_config.eos_token_id
    eos = set(eos if isinstance(eos, list) else [eos])
    tokens = 0
    started = time.perf_counter()
    for i, messages in enumerate(prompts):
        enc = tok(
            tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True),
            return_tensors="pt",
            add_special_tokens=False,
        )
        kwargs: dict = {"do_sample": False}
        if args.temperature > 0:
            torch.manual_seed(args.seed + i)
            kwargs = {"do_sample": True, "temperature": args.temperature, "top_p": 0.9, "top_k": 0}
        with torch.no_grad():
            new = model.generate(**enc, max_new_tokens=args.max_tokens, pad_token_id=tok.eos_token_id, **kwargs)
        row = new[0, enc["input_ids"].shape[1] :].tolist()
        tokens += next((j + 1 for j, t in enumerate(row) if t in eos), len(row))
    loop = time.perf_counter() - started
    return {"load": load, "wall": load + loop, "steady": loop, "tokens": tokens}


class LoadTimer:
    """Builds the engine's actor (loads the model) and keeps it: llama.cpp's server hangs in
    its destructor, so the timer is ended with `ray.kill`, as Ray Data ends its actors."""

    def __init__(self, model: str, local: dict) -> None:
        started = time.perf_counter()
        self.actor = LocalLLMActor(model, local)
        self.seconds = time.perf_counter() - started

    def load_seconds(self) -> float:
        return self.seconds


def engine(model: str, backend: str, prompts: list[list[dict]], args: argparse.Namespace) -> dict:
    """steerrec's local engine through Ray Data, end to end; its load timed apart in-process."""
    import ray

    local = LocalSection(backend=backend, num_threads=args.threads, batch_size=args.batch_size)
    timer = ray.remote(num_cpus=args.threads)(LoadTimer).remote(model, dataclasses.asdict(local))
    load = ray.get(timer.load_seconds.remote())
    ray.kill(timer)
    rows = [{"id": i, "messages": m, "sampling_params": sampling(i, args)} for i, m in enumerate(prompts)]
    processor = build_engine(EngineConfig(engine="local", model=model, local=local))
    started = time.perf_counter()
    out = processor(ray.data.from_items(rows)).take_all()
    wall = time.perf_counter() - started
    return {
        "load": load,
        "wall": wall,
        "steady": wall - load,
        "tokens": sum(int(r["num_generated_tokens"]) for r in out),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--temperature", type=float, default=0.0, help="0: greedy; > 0: seeded sampling, top_p 0.9")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=4, help="rows per engine batch")
    parser.add_argument("--cache-dir", default=str(DEFAULT_CACHE_DIR))
    args = parser.parse_args()
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray

    prompts = world_prompts(args.prompts)
    gguf = ensure_default_gguf(args.cache_dir)
    folder = dequantized(gguf, Path(args.cache_dir).expanduser())
    init_ray(num_cpus=args.threads, include_dashboard=False, configure_logging=False)
    ray.data.DataContext.get_current().enable_progress_bars = False
    mode = "greedy" if args.temperature == 0 else f"temperature {args.temperature}, seeded rows"
    print(
        f"Qwen2.5-Coder-0.5B-Instruct, {len(prompts)} world preference prompts, max {args.max_tokens} new tokens, "
        f"{mode}, {args.threads} threads; rates over steady seconds (wall less load)"
    )
    print(
        f"{'approach':<44}{'prompts':>8}{'load s':>8}{'wall s':>8}{'steady s':>9}{'prompts/s':>10}"
        f"{'gen tok':>8}{'tok/s':>7}{'x ref p/s':>10}{'x ref tok/s':>12}",
        flush=True,
    )
    ref = ray.get(ray.remote(num_cpus=args.threads)(reference).remote(folder, prompts, args))
    print_row("reference: transformers generate, batch 1", ref, ref, len(prompts))
    for name, model, backend in (
        (f"engine: llama.cpp GGUF, batch {args.batch_size}", str(gguf), "llama_cpp"),
        (f"engine: transformers fp32, batch {args.batch_size}", str(folder), "transformers"),
    ):
        print_row(name, engine(model, backend, prompts, args), ref, len(prompts))
    ray.shutdown()


def print_row(name: str, r: dict, ref: dict, n: int) -> None:
    rate, tps = n / r["steady"], r["tokens"] / r["steady"]
    print(
        f"{name:<44}{n:>8}{r['load']:>8.1f}{r['wall']:>8.1f}{r['steady']:>9.1f}{rate:>10.3f}{r['tokens']:>8}"
        f"{tps:>7.1f}{rate / (n / ref['steady']):>10.2f}{tps / (ref['tokens'] / ref['steady']):>12.2f}",
        flush=True,
    )


if __name__ == "__main__":
    main()
