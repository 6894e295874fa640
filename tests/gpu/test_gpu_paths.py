"""The GPU paths at tiny sizes, on CUDA: the loop, an alignment step in bf16, serving, the staged engines.

Run by `python -m benchmarks.gpu.check` before its parts; skipped on a machine without CUDA.
"""

from __future__ import annotations

import importlib.util
import math

import pytest


def _cuda() -> bool:
    if importlib.util.find_spec("torch") is None:
        return False
    import torch

    return torch.cuda.is_available()


pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not _cuda(), reason="needs a CUDA device: run on the lent GPU machine (benchmarks/gpu)"),
]


def test_tiger_trains_through_the_loop_on_cuda(tmp_path):
    from benchmarks.gpu import train_part
    from benchmarks.gpu.plan import TrainBudget

    from steerrec.train.loop import fit_local
    from steerrec.train.recommender import RecommenderTask

    budget = TrainBudget(batch_size=32, steps=3, epochs=2, valid_examples=32, n_items=300, cpus_per_worker=2)
    cfg = train_part.job_config(budget, str(tmp_path), use_gpu=True)
    task = RecommenderTask(train_part.synthetic_prepared(budget), cfg)
    summary, _ = fit_local(task, cfg.loop, tmp_path / "ckpt", device="cuda")
    assert all(math.isfinite(row["train_loss"]) and row["steps"] == 3 for row in summary["history"])
    assert "valid_ndcg@10" in summary["history"][-1]


def test_lora_recpo_step_in_bf16_on_cuda():
    import torch
    from transformers import AutoModelForCausalLM, Qwen2Config

    from steerrec.alignment.losses import LossConfig
    from steerrec.alignment.model import ModelConfig, add_lora, candidate_logps, reference

    torch.manual_seed(0)
    config = Qwen2Config(
        vocab_size=512,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
    )
    policy = add_lora(AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16), ModelConfig()).to("cuda")
    prompts = [[5, 6, 7, 8], [9, 10, 11]]
    cands = [[[20, 21, 1], [22, 1], [23, 24, 25, 1]], [[30, 1], [31, 32, 1], [33, 1]]]
    total, mean = candidate_logps(policy, prompts, cands)
    with reference(policy) as ref:
        ref_total, _ = candidate_logps(ref, prompts, cands)
    scores = torch.tensor([[5.0, 3.0, 1.0], [4.0, 2.0, 1.0]], device="cuda")
    out = LossConfig("recpo")({"policy": total, "mean": mean, "scores": scores, "reference": ref_total})
    out.loss.backward()
    assert total.is_cuda and torch.isfinite(out.loss)
    lora_b = [p for n, p in policy.named_parameters() if "lora_B" in n]
    assert lora_b and all(p.grad is not None and p.grad.abs().sum() > 0 for p in lora_b)


def test_recommender_serves_from_cuda(tmp_path):
    from steerrec.serving import Recommender, RecommendRequest
    from steerrec.serving.tiny_run import build_run
    from steerrec.steering import SteeringConfig

    off = SteeringConfig(enabled=False)  # its sentence embedder is not staged on the GPU machine
    rec = Recommender.from_run(build_run(tmp_path / "run"), beam_size=10, device="cuda", steering=off)
    out = rec.recommend([RecommendRequest(user_id=f"u{n}", preferences=["avoid bulky things"], k=5) for n in range(4)])
    assert next(rec.run.model.parameters()).is_cuda
    assert all(len(r.items) == 5 and all(math.isfinite(i.score) for i in r.items) for r in out)


def test_staged_engines_import():
    """Ray and vLLM come from ../shared/gpu/stage.sh; the parts that need them cannot run without."""
    missing = [name for name in ("ray", "vllm") if importlib.util.find_spec(name) is None]
    if missing:
        pytest.skip(f"{missing} not staged: parts train and vllm need them (benchmarks/gpu/check.py says how)")
    import ray.data.llm
    import vllm

    assert vllm.__version__ and hasattr(ray.data.llm, "vLLMEngineProcessorConfig")
