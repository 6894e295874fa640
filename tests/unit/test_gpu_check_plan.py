"""The GPU check cannot rot: its CPU dry run builds every config it would use, and runs here in seconds."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
from benchmarks.gpu import dry_run, vllm_part
from benchmarks.gpu import plan as P

REPO = P.REPO


def test_model_sizes_match_the_published_parameter_counts():
    assert P.llama_params(P.LLAMA3_8B) == 8_030_261_248  # Meta-Llama-3-8B
    assert P.llama_params(P.QWEN25_05B) == 494_032_768  # Qwen2.5-0.5B (tied embeddings, qkv biases)
    sized = P.size_70b(10.0)
    assert 70.0e9 < sized["params_70b"] < 71.0e9 and sized["kv_bytes_per_token_70b"] == 327_680
    expected = 10.0 * sized["params_8b"] / sized["params_70b"] * 8 * 0.8  # 8 GPUs, tensor-parallel efficiency 0.8
    assert sized["estimated_prompts_per_s_per_node"] == pytest.approx(expected, abs=0.01)


def test_stage_script_stages_what_the_parts_import():
    if not P.STAGE_SCRIPT.is_file():
        pytest.skip(f"{P.STAGE_SCRIPT} not found: the dry run expects ../shared beside the repository")
    staged = P.staged_packages()
    assert staged["ray"] == "2.60.0" and "vllm" in staged and "xgrammar" in staged


def test_dry_run_finds_no_problem():
    problems = dry_run.check()
    if not P.STAGE_SCRIPT.is_file():
        assert problems and all("stage" in p for p in problems), problems
        pytest.skip(f"{P.STAGE_SCRIPT} not found: only the staging checks failed")
    assert problems == []


def test_dry_run_catches_a_job_command_that_drifts(monkeypatch):
    """The raw side loads dummy weights; a job command without them would time two different things."""
    dropped = [o for o in vllm_part.job_overrides(P.VllmBudget()) if "engine_kwargs" not in o]
    monkeypatch.setattr(vllm_part, "job_overrides", lambda budget: dropped)
    problems = []
    dry_run.check_vllm(P.Plan(), problems)
    assert any("load_format" in p for p in problems), problems


def test_dry_run_cli_is_fast_and_exits_zero():
    started = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.gpu.check", "--dry-run"], cwd=REPO, capture_output=True, text=True
    )
    seconds = time.perf_counter() - started
    assert "dry run: parts vllm, train, align, serve" in out.stdout, out.stderr[-2000:]
    if P.STAGE_SCRIPT.is_file():
        assert out.returncode == 0, out.stdout + out.stderr[-2000:]
    assert seconds < 30, f"the dry run took {seconds:.1f} s"


def test_unknown_part_is_an_error_naming_it(capsys):
    from benchmarks.gpu.check import parse

    with pytest.raises(SystemExit):
        parse(["--parts", "train,vlm"])
    assert "vlm" in capsys.readouterr().err


def test_vllm_model_folder_renders_the_job_prompts(tmp_path):
    """What vLLM's dummy load reads: Llama-3-8B's config.json and a tokenizer whose chat template renders
    the job's own prompts into ids inside the model's vocabulary."""
    import json

    from transformers import AutoTokenizer

    budget = P.VllmBudget(users=20, tokenizer_vocab=600)
    data = vllm_part.prepare_world(tmp_path / "world", 50)
    folder = vllm_part.write_model_folder(tmp_path / "model", data, budget)
    config = json.loads((folder / "config.json").read_text())
    assert config["hidden_size"] == 4096 and config["vocab_size"] == 128256
    tok = AutoTokenizer.from_pretrained(str(folder))
    assert config["eos_token_id"] == tok.eos_token_id
    request = vllm_part.job_requests(data, budget.users)[0]
    text = tok.apply_chat_template(request["messages"], tokenize=False, add_generation_prompt=True)
    ids = tok(text)["input_ids"]
    assert text.endswith("<|start|>assistant\n") and request["messages"][-1]["content"] in text
    assert len(ids) > 50 and max(ids) < len(tok) <= config["vocab_size"]
