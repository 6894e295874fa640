"""Part 1: preference approximation through the real job (`ray.data.llm`) against raw vLLM.

Both sides read the same world prompts (steerrec.preferences.approximate.build_requests),
the same dummy-weight model folder (Llama-3-8B config, `load_format="dummy"`) and the same
sampling (the job's temperature, top_p, max_tokens, per-row seeds and JSON schema), one
engine on one GPU. Raw vLLM runs in its own process first (`LLM.generate` on token ids),
so that its GPU memory is free before the job starts its engine. The job's steady rate
leaves out its first streamed batch, which carries the engine start; raw vLLM's engine
start is timed apart from its `generate`.

No Llama tokenizer exists offline: without `--tokenizer` the model folder gets a byte-level
BPE trained on the world's prompts (`VllmBudget.tokenizer_vocab` tokens) with a Llama-3-style
chat template, while the model keeps Llama-3's 128,256-row vocabulary (the LM head costs
what it costs there). Token counts per prompt therefore differ from Llama-3's; both sides
see the same ones, so the ratio holds.

    python -m benchmarks.gpu.vllm_part raw --model DIR --data DIR --budget '{"users": 300}' --json OUT.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

from benchmarks.gpu.plan import LLAMA3_8B, REPO, VllmBudget, size_70b

CHAT_TEMPLATE = (
    "{% for m in messages %}<|start|>{{ m['role'] }}\n{{ m['content'] }}<eos>{% endfor %}"
    "{% if add_generation_prompt %}<|start|>assistant\n{% endif %}"
)
ENV = {"VLLM_USE_FLASHINFER_SAMPLER": "0", "RAY_USAGE_STATS_ENABLED": "0", "TOKENIZERS_PARALLELISM": "false"}


def prepare_world(folder: Path, users: int) -> Path:
    """The built-in world's dataset folder (once), through the data stage's own `prepare`."""
    from steerrec.data.prepare import PrepareConfig, prepare

    if not (folder / "manifest.json").is_file():
        prepare(PrepareConfig(format="world", out=str(folder), world={"n_users": users}))
    return folder


def job_requests(data: Path, users: int) -> list[dict]:
    from steerrec.preferences.approximate import build_requests
    from steerrec.preferences.prompts import PromptConfig

    return build_requests(str(data), PromptConfig(), users)


def write_model_folder(folder: Path, data: Path, budget: VllmBudget, tokenizer_dir: str | None = None) -> Path:
    """config.json (Llama-3-8B) and a tokenizer with a chat template: what vLLM's dummy load needs."""
    from transformers import AutoTokenizer

    folder.mkdir(parents=True, exist_ok=True)
    if tokenizer_dir:
        tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    else:
        from steerrec.alignment.model import build_tokenizer

        texts = [m["content"] for r in job_requests(data, budget.users) for m in r["messages"]]
        tok = build_tokenizer(texts, budget.tokenizer_vocab)
        tok.add_special_tokens({"additional_special_tokens": ["<|start|>"]})
    if not tok.chat_template:
        tok.chat_template = CHAT_TEMPLATE
    tok.save_pretrained(folder)
    eos = tok.eos_token_id
    config = LLAMA3_8B | {"bos_token_id": tok.bos_token_id or eos, "eos_token_id": eos, "pad_token_id": None}
    if len(tok) > config["vocab_size"]:
        raise ValueError(f"--tokenizer has {len(tok)} tokens, more than the model's vocab_size {config['vocab_size']}")
    (folder / "config.json").write_text(json.dumps(config, indent=1))
    return folder


def engine_kwargs(budget: VllmBudget) -> dict:
    """The engine options both sides share (the job gets them through its config)."""
    return {
        "load_format": "dummy",
        "max_model_len": budget.max_model_len,
        "gpu_memory_utilization": budget.gpu_memory_utilization,
        "enable_prefix_caching": True,
    }


def job_overrides(budget: VllmBudget) -> list[str]:
    """The job's key=value overrides that make it match the raw side."""
    return [
        "generation.max_retries=0",
        f"generation.max_tokens={budget.max_tokens}",
        f"engine.vllm.batch_size={budget.batch_size}",
        f"engine.vllm.max_model_len={budget.max_model_len}",
        f"engine.vllm.gpu_memory_utilization={budget.gpu_memory_utilization}",
        "engine.vllm.engine_kwargs={load_format: dummy}",
    ]


def job_command(model: Path, data: Path, out: Path, budget: VllmBudget) -> list[str]:
    script = str(REPO / "jobs" / "approximate_preferences.py")
    args = ["--data", str(data), "--out", str(out), "--engine", "vllm", "--model", str(model)]
    return [sys.executable, script, *args, "--limit-users", str(budget.users), *job_overrides(budget)]


def raw_vllm(model: Path, data: Path, budget: VllmBudget) -> dict:
    """Raw `LLM.generate` on the job's prompts with the job's sampling: engine start and rate apart."""
    from transformers import AutoTokenizer
    from vllm import LLM, SamplingParams
    from vllm.inputs import TokensPrompt
    from vllm.sampling_params import StructuredOutputsParams

    from steerrec.llm.base import make_sampling_params
    from steerrec.llm.vllm_engine import vllm_sampling_params
    from steerrec.preferences.generate import GenerationConfig, row_seed
    from steerrec.preferences.prompts import PREFERENCES_SCHEMA

    gen = GenerationConfig(max_tokens=budget.max_tokens)
    tok = AutoTokenizer.from_pretrained(str(model))
    prompts, params = [], []
    for r in job_requests(data, budget.users):
        text = tok.apply_chat_template(r["messages"], tokenize=False, add_generation_prompt=True)
        prompts.append(TokensPrompt(prompt_token_ids=tok(text)["input_ids"]))
        seed = row_seed(gen.seed, (r["user_id"], r["t"]), 0)
        cell = vllm_sampling_params(
            make_sampling_params(gen.temperature, gen.top_p, gen.max_tokens, seed, PREFERENCES_SCHEMA)
        )
        cell["structured_outputs"] = StructuredOutputsParams(**cell["structured_outputs"])
        params.append(SamplingParams(**cell))
    started = time.perf_counter()
    llm = LLM(model=str(model), tensor_parallel_size=1, dtype="auto", **engine_kwargs(budget))
    engine_s = time.perf_counter() - started
    started = time.perf_counter()
    outs = llm.generate(prompts, params, use_tqdm=False)
    seconds = time.perf_counter() - started
    tokens_in = sum(len(p["prompt_token_ids"]) for p in prompts)
    tokens_out = sum(len(o.outputs[0].token_ids) for o in outs)
    return {
        "prompts": len(prompts),
        "engine_start_s": round(engine_s, 1),
        "generate_s": round(seconds, 2),
        "prompts_per_s": len(prompts) / seconds,
        "tokens_in": tokens_in,
        "tokens_out": tokens_out,
        "output_tokens_per_s": tokens_out / seconds,
    }


def run_job(model: Path, data: Path, out: Path, budget: VllmBudget) -> dict:
    """jobs/approximate_preferences.py --engine vllm in its own process; its manifest's figures."""
    started = time.perf_counter()
    env = os.environ | ENV
    subprocess.run(job_command(model, data, out, budget), check=True, env=env, cwd=REPO)
    wall = time.perf_counter() - started
    stats = json.loads((out / "manifest.json").read_text())
    steady_rows = stats["attempts"] - stats["first_batch_rows"]
    steady_s = stats["seconds"] - stats["first_batch_seconds"]
    return {
        "prompts": stats["attempts"],
        "written": stats["written"],
        "failed": stats["failed"],
        "job_wall_s": round(wall, 1),
        "generate_s": stats["seconds"],
        "first_batch_s": stats["first_batch_seconds"],
        "first_batch_rows": stats["first_batch_rows"],
        "prompts_per_s_overall": stats["attempts"] / stats["seconds"],
        "prompts_per_s": steady_rows / steady_s if steady_rows > 0 and steady_s > 0 else None,
        "tokens_in": stats["tokens_in"],
        "tokens_out": stats["tokens_out"],
    }


def run(work: Path, data: Path, budget: VllmBudget, tokenizer_dir: str | None = None) -> dict:
    """Part 1 end to end on the world folder `data`; its figures (ratio: job steady rate / raw rate)."""
    model = write_model_folder(work / "llama3-8b-dummy", data, budget, tokenizer_dir)
    raw_json = work / "raw_vllm.json"
    cmd = [sys.executable, "-m", "benchmarks.gpu.vllm_part", "raw", "--model", str(model), "--data", str(data)]
    cmd += ["--budget", json.dumps(asdict(budget)), "--json", str(raw_json)]
    subprocess.run(cmd, check=True, env=os.environ | ENV, cwd=REPO)
    raw = json.loads(raw_json.read_text())
    job = run_job(model, data, work / "prefs", budget)
    ratio = job["prompts_per_s"] / raw["prompts_per_s"] if job["prompts_per_s"] else None
    return {
        "budget": asdict(budget),
        "tokenizer": tokenizer_dir or f"byte-level BPE trained on the world's prompts ({budget.tokenizer_vocab})",
        "raw_vllm": raw,
        "job": job,
        "ratio_steady": ratio,
        "goal": 0.95,
        "llama3_70b_on_paper": size_70b(raw["prompts_per_s"]),
    }


def _main() -> None:
    parser = argparse.ArgumentParser(description="raw vLLM side of part 1 (run by benchmarks.gpu.check)")
    parser.add_argument("side", choices=["raw"])
    parser.add_argument("--model", required=True, type=Path)
    parser.add_argument("--data", required=True, type=Path)
    parser.add_argument("--budget", required=True, help="VllmBudget as JSON (the check passes its own)")
    parser.add_argument("--json", required=True, type=Path)
    args = parser.parse_args()
    budget = VllmBudget(**json.loads(args.budget))
    args.json.write_text(json.dumps(raw_vllm(args.model, args.data, budget), indent=1))


if __name__ == "__main__":
    _main()
