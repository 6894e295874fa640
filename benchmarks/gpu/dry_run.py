"""The CPU dry run: every config object the GPU check builds, built here, with no GPU and no vLLM.

It checks, in a few seconds: the plan's budgets; the job's command line as the job itself
parses it (its argparse, then `ApproximationConfig` with the check's `key=value`
overrides, `engine_kwargs` included) and the `ray.data.llm` processor config it makes;
that the raw-vLLM side's sampling cells convert; the TIGER, Recommender-job, loop and
Ray scaling configs of part train; the SFT and RecPO `AlignConfig`s and the Qwen2 config
of part align; the serving requests of part serve; the 70B paper sizing; and that
stage.sh stages what the parts import, and every file the check runs exists.
Returns a list of problems (empty: the plan holds).
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from benchmarks.gpu import plan as P


def _job_module():
    """jobs/approximate_preferences.py as a module (jobs/ is not a package)."""
    path = P.REPO / "jobs" / "approximate_preferences.py"
    spec = importlib.util.spec_from_file_location("approximate_preferences_job", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def check_vllm(plan: P.Plan, problems: list[str]) -> None:
    import dataclasses

    from benchmarks.gpu import vllm_part

    from steerrec.config import load
    from steerrec.llm.base import make_sampling_params
    from steerrec.llm.vllm_engine import vllm_processor_config, vllm_sampling_params
    from steerrec.preferences.approximate import ApproximationConfig
    from steerrec.preferences.prompts import PREFERENCES_SCHEMA

    b = plan.vllm
    model, data, out = Path("/tmp/model"), Path("/tmp/world"), Path("/tmp/prefs")
    args = _job_module().parser().parse_args(vllm_part.job_command(model, data, out, b)[2:])
    flags = {"data": args.data, "out": args.out, "limit_users": args.limit_users}
    flags |= {"engine": {"engine": args.engine, "model": args.model}, "prompt.granularity": args.granularity}
    cfg = load(ApproximationConfig, None, args.overrides, flags)
    want = vllm_part.engine_kwargs(b)
    v = cfg.engine.vllm
    got = {"load_format": v.engine_kwargs.get("load_format"), "max_model_len": v.max_model_len}
    got |= {"gpu_memory_utilization": v.gpu_memory_utilization, "enable_prefix_caching": v.enable_prefix_caching}
    if got != want:
        problems.append(f"vllm: the job's engine settings {got} differ from raw vLLM's {want}")
    if cfg.generation.max_tokens != b.max_tokens or cfg.generation.max_retries != 0:
        problems.append(f"vllm: the job's generation config {cfg.generation} does not match the budget")
    if importlib.util.find_spec("ray") is not None:
        processor = vllm_processor_config(cfg.engine)
        if processor.engine_kwargs.get("load_format") != "dummy":
            problems.append(f"vllm: processor engine_kwargs {processor.engine_kwargs} lack load_format=dummy")
    cell = vllm_sampling_params(make_sampling_params(0.7, 0.9, b.max_tokens, 1, PREFERENCES_SCHEMA))
    if set(cell) != {"temperature", "top_p", "max_tokens", "seed", "structured_outputs"}:
        problems.append(f"vllm: sampling cell {sorted(cell)} is not what raw vLLM's SamplingParams takes")
    json.dumps(dataclasses.asdict(b))  # the raw side's --budget
    if len(P.LLAMA3_8B) < 10 or P.llama_params(P.LLAMA3_8B) // 10**8 != 80:
        problems.append(f"vllm: the Llama-3-8B config counts {P.llama_params(P.LLAMA3_8B):,} parameters, not ~8.0B")


def check_train(plan: P.Plan, problems: list[str]) -> None:
    from benchmarks.gpu import train_part

    from steerrec.models.tiger import TigerConfig

    TigerConfig(**P.TIGER_PAPER)
    cfg = train_part.job_config(plan.train, "/tmp/train", use_gpu=True)
    if not cfg.scaling.use_gpu or cfg.loop.batch_size != plan.train.batch_size or cfg.loop.epochs < 2:
        problems.append(f"train: config {cfg.loop} / {cfg.scaling} is not the budget's batch on a GPU worker")
    if P.TrainBudget().batch_size != 256:
        problems.append(f"train: the paper's batch is 256, the budget has {P.TrainBudget().batch_size}")


def check_align(plan: P.Plan, problems: list[str]) -> None:
    from benchmarks.gpu import align_part

    from steerrec.alignment.losses import LossConfig

    b = plan.align
    sft = align_part.align_config(b, Path("/tmp/world"), Path("/tmp/sft"), Path("/tmp/model"), "cuda")
    recpo = align_part.align_config(
        b, Path("/tmp/world"), Path("/tmp/recpo"), Path("/tmp/model"), "cuda", sft_run="/tmp/sft", loss=LossConfig()
    )
    if recpo.loss.name != "recpo" or not sft.use_gpu or sft.model.dtype != "bfloat16":
        problems.append("align: SFT/RecPO configs are not RecPO, bf16 on a GPU")
    if importlib.util.find_spec("transformers") is not None:
        from transformers import Qwen2Config

        fields = {k: v for k, v in P.QWEN25_05B.items() if k not in ("architectures", "model_type", "torch_dtype")}
        Qwen2Config(**fields)
    if P.llama_params(P.QWEN25_05B) // 10**7 != 49:
        problems.append(f"align: Qwen2.5-0.5B sizes give {P.llama_params(P.QWEN25_05B):,} parameters, not ~494M")


def check_serve(plan: P.Plan, problems: list[str]) -> None:
    from steerrec.serving import RecommendRequest

    b = plan.serve
    if b.n_items > 256**3 or max(b.batches) > 64:
        problems.append(f"serve: budget {b} out of range")
    for n in range(max(b.batches)):
        RecommendRequest(user_id=f"u{n % b.n_users}", preferences=["avoid bulky headsets"], k=10)


CHECKS = {"vllm": check_vllm, "train": check_train, "align": check_align, "serve": check_serve}


def check(parts: tuple[str, ...] = P.PARTS, tokenizer: str | None = None) -> list[str]:
    """Every problem the plan has for `parts` (empty when it holds)."""
    problems = P.check_staging(parts)
    if tokenizer and not Path(tokenizer).is_dir():
        problems.append(f"--tokenizer {tokenizer}: no such folder")
    for smoke, plan in (("", P.Plan()), (" (cpu smoke)", P.cpu_smoke_plan())):
        if set(plan.planned_s) != set(P.PARTS) or sum(plan.planned_s.values()) + plan.planned_tests_s > 360:
            problems.append(f"plan{smoke}: planned seconds {plan.planned_s} exceed the 6-minute budget")
        for part in parts:
            try:
                CHECKS[part](plan, problems)
            except Exception as exc:  # one broken part must not hide the others' problems
                problems.append(f"{part}{smoke}: {type(exc).__name__}: {exc}")
    P.size_70b(None)
    return problems


def summary(parts: tuple[str, ...]) -> str:
    plan = P.Plan()
    lines = [f"dry run: parts {', '.join(parts)}; planned seconds on one H100 (a plan): {plan.planned_s}"]
    sized = P.size_70b(None)
    lines.append(
        f"Llama-3-8B {sized['params_8b'] / 1e9:.2f}B params; 70B {sized['params_70b'] / 1e9:.1f}B: "
        f"{sized['weights_gb_bf16']} GB bf16, TP{sized['tensor_parallel']} -> {sized['weights_gb_per_gpu']} GB/GPU, "
        f"KV {sized['kv_bytes_per_token_70b'] // 1024} KiB/token, ~{sized['kv_tokens_per_engine']:,} tokens/engine"
    )
    vllm = "present" if importlib.util.find_spec("vllm") else "absent here (staged on the GPU machine)"
    lines.append(f"vllm: {vllm}; stage.sh: {P.STAGE_SCRIPT}")
    return "\n".join(lines)
