"""The GPU check's plan: its parts, each part's budget, the model sizes, and what staging brings.

Everything here is plain data and arithmetic (no torch, no Ray, no vLLM), so the CPU dry
run (`python -m benchmarks.gpu.check --dry-run`) builds and checks it in a second.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PARTS = ("vllm", "train", "align", "serve")

# Llama-3-8B (meta-llama/Meta-Llama-3-8B-Instruct config.json): the vLLM part's architecture
LLAMA3_8B = {
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "hidden_size": 4096,
    "intermediate_size": 14336,
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "head_dim": 128,
    "vocab_size": 128256,
    "max_position_embeddings": 8192,
    "rms_norm_eps": 1e-5,
    "rope_theta": 500000.0,
    "hidden_act": "silu",
    "tie_word_embeddings": False,
    "torch_dtype": "bfloat16",
}
# Llama-3-70B: sized on paper from the 8B figure, never run here
LLAMA3_70B = LLAMA3_8B | {
    "hidden_size": 8192,
    "intermediate_size": 28672,
    "num_hidden_layers": 80,
    "num_attention_heads": 64,
}
# Qwen2.5-0.5B(-Instruct) config.json: the alignment part's architecture, random init
QWEN25_05B = {
    "architectures": ["Qwen2ForCausalLM"],
    "model_type": "qwen2",
    "hidden_size": 896,
    "intermediate_size": 4864,
    "num_hidden_layers": 24,
    "num_attention_heads": 14,
    "num_key_value_heads": 2,
    "vocab_size": 151936,
    "max_position_embeddings": 32768,
    "rms_norm_eps": 1e-6,
    "rope_theta": 1000000.0,
    "hidden_act": "silu",
    "tie_word_embeddings": True,
    "torch_dtype": "bfloat16",
}
# TIGER as the Mender paper reproduces it (App. A.2): 4 + 4 layers, 6 heads x 64, d_ff 1024
TIGER_PAPER = {
    "codebook_sizes": [256, 256, 256, 32],
    "max_history": 20,
    "num_layers": 4,
    "num_decoder_layers": 4,
    "d_model": 128,
    "d_ff": 1024,
    "num_heads": 6,
    "d_kv": 64,
    "dropout": 0.1,
}
OFFICE_TRAIN_EXAMPLES = 38_543  # LC-Rec Office's training examples (the recommendation axis)
OFFICE_ITEMS = 2_420


@dataclass
class VllmBudget:
    users: int = 150  # world users whose prompts go through both sides (~9 prompts each)
    max_tokens: int = 128  # the job's generation.max_tokens, the same for raw vLLM
    batch_size: int = 64  # ray.data.llm rows per engine call
    max_model_len: int = 4096
    gpu_memory_utilization: float = 0.85
    tokenizer_vocab: int = 32000  # BPE trained on the world's prompts when no --tokenizer is given


@dataclass
class TrainBudget:
    batch_size: int = 256
    steps: int = 40  # steps per epoch, each side
    epochs: int = 3  # the first is warm-up, the figures are the median of the others
    valid_examples: int = 256  # beam-search validation once, at the last epoch (not timed)
    n_items: int = OFFICE_ITEMS
    cpus_per_worker: int = 8


@dataclass
class AlignBudget:
    users: int = 120  # world users whose examples feed SFT and RecPO
    batch_size: int = 8
    steps: int = 12  # optimizer steps per epoch
    epochs: int = 2  # the first is warm-up
    negatives: int = 3  # RecPO dispreferred candidates per example
    tokenizer_vocab: int = 8000


@dataclass
class ServeBudget:
    n_items: int = 2000
    n_users: int = 32
    batches: tuple[int, ...] = (1, 16)
    seconds: float = 10.0  # timed per batch size, after warm-up calls
    beam_size: int = 20
    hidden: int = 512  # the history/preference text encoder's width
    d_model: int = 128


@dataclass
class Plan:
    vllm: VllmBudget = field(default_factory=VllmBudget)
    train: TrainBudget = field(default_factory=TrainBudget)
    align: AlignBudget = field(default_factory=AlignBudget)
    serve: ServeBudget = field(default_factory=ServeBudget)
    # planned wall seconds per part on one H100 after staging (a plan, not a measurement)
    planned_s: dict[str, int] = field(default_factory=lambda: {"vllm": 220, "train": 50, "align": 45, "serve": 25})
    planned_tests_s: int = 20  # tests/gpu, run first

    def to_dict(self) -> dict:
        return asdict(self)


def cpu_smoke_plan() -> Plan:
    """Tiny sizes that run parts train and serve (and align) on 2 CPU cores in under a minute."""
    return Plan(
        train=TrainBudget(batch_size=16, steps=4, epochs=2, valid_examples=16, n_items=200, cpus_per_worker=1),
        align=AlignBudget(users=20, batch_size=2, steps=2, epochs=1, tokenizer_vocab=400),
        serve=ServeBudget(n_items=60, n_users=4, batches=(1, 4), seconds=0.5, beam_size=10, hidden=24, d_model=16),
    )


def llama_params(cfg: dict) -> int:
    """Parameters of a Llama-architecture config: embeddings, attention, SwiGLU MLP, norms, head."""
    h, v, n = cfg["hidden_size"], cfg["vocab_size"], cfg["num_hidden_layers"]
    d = cfg.get("head_dim") or h // cfg["num_attention_heads"]
    attn = h * cfg["num_attention_heads"] * d * 2 + h * cfg["num_key_value_heads"] * d * 2  # q, o, k, v
    if cfg.get("model_type") == "qwen2":  # q, k and v carry biases
        attn += cfg["num_attention_heads"] * d + 2 * cfg["num_key_value_heads"] * d
    mlp = 3 * h * cfg["intermediate_size"]
    head = 0 if cfg.get("tie_word_embeddings") else v * h
    return v * h + n * (attn + mlp + 2 * h) + h + head


def kv_bytes_per_token(cfg: dict, dtype_bytes: int = 2) -> int:
    d = cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"]
    return 2 * cfg["num_hidden_layers"] * cfg["num_key_value_heads"] * d * dtype_bytes


def size_70b(measured_8b_prompts_s: float | None, gpu_gb: float = 80.0, tp: int = 4, tp_efficiency: float = 0.8):
    """Llama-3-70B sized on paper from the 8B run: weights, KV room, and an *estimated* rate.

    Rate per 8-GPU node = 8B prompts/s per GPU x (8B params / 70B params) x 8 GPUs x
    tp_efficiency (an assumption: what tensor parallelism keeps); None without an 8B figure.
    """
    p8, p70 = llama_params(LLAMA3_8B), llama_params(LLAMA3_70B)
    weights_gb = 2 * p70 / 1e9
    per_gpu_gb = weights_gb / tp
    kv = kv_bytes_per_token(LLAMA3_70B)
    free_per_engine = tp * (0.9 * gpu_gb - per_gpu_gb) * 1e9
    estimate = None
    if measured_8b_prompts_s:
        estimate = measured_8b_prompts_s * (p8 / p70) * 8 * tp_efficiency
    return {
        "params_8b": p8,
        "params_70b": p70,
        "weights_gb_bf16": round(weights_gb, 1),
        "tensor_parallel": tp,
        "weights_gb_per_gpu": round(per_gpu_gb, 1),
        "kv_bytes_per_token_8b": kv_bytes_per_token(LLAMA3_8B),
        "kv_bytes_per_token_70b": kv,
        "kv_tokens_per_engine": int(free_per_engine // kv),
        "engines_per_8gpu_node": 8 // tp,
        "estimated_prompts_per_s_per_node": None if estimate is None else round(estimate, 2),
        "estimate_assumes": f"throughput per GPU scales with 1/params; tensor-parallel efficiency {tp_efficiency}",
    }


STAGE_SCRIPT = REPO.parent / "shared" / "gpu" / "stage.sh"
NEEDED_WHEELS = {"vllm": ("ray", "vllm", "xgrammar"), "train": ("ray",), "align": (), "serve": ()}
# files the check reads or runs on the GPU machine (relative to the repository root)
NEEDED_FILES = (
    "jobs/approximate_preferences.py",
    "jobs/prepare_data.py",
    "platform/steerrec/llm/vllm_engine.py",
    "platform/steerrec/preferences/approximate.py",
    "platform/steerrec/train/loop.py",
    "platform/steerrec/train/sessions.py",
    "platform/steerrec/train/recommender.py",
    "platform/steerrec/alignment/train.py",
    "platform/steerrec/alignment/losses.py",
    "platform/steerrec/serving/service.py",
    "platform/steerrec/serving/tiny_run.py",
    "tests/gpu/test_gpu_paths.py",
)


def staged_packages(script: Path = STAGE_SCRIPT) -> dict[str, str]:
    """name -> version of every wheel `stage.sh` downloads (its ray_set and vllm_set)."""
    text = script.read_text()
    found = {}
    for block in re.findall(r'(?:ray_set|vllm_set)="([^"]*)"', text):
        for spec in block.split():
            name, _, version = spec.partition("==")
            found[name.lower().replace("-", "_")] = version
    return found


def check_staging(parts: tuple[str, ...], script: Path = STAGE_SCRIPT) -> list[str]:
    """Problems with the staging the chosen parts need: the script, its package list, staged parts."""
    problems = [f"{name}: not in the repository" for name in NEEDED_FILES if not (REPO / name).is_file()]
    if not script.is_file():
        return problems + [f"{script}: the staging script is absent (../shared beside the repository)"]
    staged = staged_packages(script)
    for part in parts:
        problems += [f"part {part}: stage.sh does not stage {w}" for w in NEEDED_WHEELS[part] if w not in staged]
    gpu = REPO / ".gpu"
    if gpu.is_dir():  # staged already: every part holds chunks, the last one install.sh
        folders = sorted(gpu.glob("part.*"))
        if not folders or not (folders[-1] / "install.sh").is_file():
            problems.append(f"{gpu}: staged parts lack install.sh in the last one; rerun stage.sh")
        problems += [f"{f}: holds no chunk" for f in folders if not list(f.glob("chunk.*"))]
    return problems
