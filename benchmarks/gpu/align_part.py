"""Part 3: LoRA SFT, then RecPO, of a Qwen2.5-0.5B-sized model (random init, bf16) on one GPU.

The model folder is written here: Qwen2.5-0.5B's config.json (24 layers, 896 wide, GQA
14/2 heads, 151,936-row tied vocabulary) with random weights, and a byte-level BPE
tokenizer trained on the world's alignment prompts (no Qwen tokenizer is offline in this
form; token ids index the first rows of the full vocabulary, so the LM head costs what it
costs with Qwen's). Both stages go through the library's own path, unchanged:
`steerrec.alignment.train.train_sft` (model.source=hf, LoRA on q/k/v/o) and `align` with
loss.name=recpo from that SFT run folder (the SFT LoRA merged, a fresh LoRA trained, the
reference = adapter off), each run by `steerrec.train.loop` in a LocalSession on cuda.
examples/s is the loop's own figure (each epoch's examples over its wall time); the
first epoch is warm-up, the figure is the last epoch's.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from benchmarks.gpu.plan import QWEN25_05B, AlignBudget

TINY = QWEN25_05B | {
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "vocab_size": 1024,
}


def align_config(budget: AlignBudget, data: Path, out: Path, model_dir: Path, device: str, **changes):
    from steerrec.alignment.config import AlignConfig
    from steerrec.alignment.data import AlignmentDataConfig
    from steerrec.alignment.model import ModelConfig

    return AlignConfig(
        data=str(data),
        out=str(out),
        model=ModelConfig(source="hf", name=str(model_dir), dtype="bfloat16"),
        examples=AlignmentDataConfig(n_negatives=budget.negatives),
        lr=1e-5,
        epochs=budget.epochs,
        batch_size=budget.batch_size,
        max_train=budget.batch_size * budget.steps,
        max_valid=0,
        users=budget.users,
        progress=False,
        use_gpu=device == "cuda",
        **changes,
    )


def write_model_folder(folder: Path, cfg, budget: AlignBudget, tiny: bool) -> dict:
    """A random-init Qwen2 (0.5B sizes, or tiny ones) saved with a tokenizer trained on the prompts."""
    import torch
    from transformers import AutoModelForCausalLM, Qwen2Config

    from steerrec.alignment.examples import corpus, load_examples
    from steerrec.alignment.model import build_tokenizer

    tok = build_tokenizer(corpus(load_examples(cfg)), budget.tokenizer_vocab)
    sizes = TINY if tiny else QWEN25_05B
    if len(tok) > sizes["vocab_size"]:
        raise ValueError(f"align.tokenizer_vocab: {len(tok)} tokens exceed the model's {sizes['vocab_size']}")
    fields = {k: v for k, v in sizes.items() if k not in ("architectures", "model_type", "torch_dtype")}
    config = Qwen2Config(**fields, pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id, bos_token_id=None)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return {"parameters": sum(p.numel() for p in model.parameters()), "tokenizer_tokens": len(tok), **fields}


def _figures(summary: dict) -> dict:
    last = summary["history"][-1]
    keys = ("examples_per_s", "train_examples", "steps", "steps_per_s", "train_seconds", "train_loss")
    return {k: last.get(k) for k in keys}


def run(work: Path, data: Path, budget: AlignBudget, device: str) -> dict:
    """Part 3: SFT then RecPO through the library; examples/s of each."""
    from steerrec.alignment.losses import LossConfig
    from steerrec.alignment.train import align, train_sft

    model_dir, sft_out, recpo_out = work / "qwen2.5-0.5b-random", work / "sft", work / "recpo"
    sft_cfg = align_config(budget, data, sft_out, model_dir, device)
    model = write_model_folder(model_dir, sft_cfg, budget, tiny=device != "cuda")
    sft = train_sft(sft_cfg)
    recpo_cfg = align_config(budget, data, recpo_out, model_dir, device, sft_run=str(sft_out), loss=LossConfig("recpo"))
    recpo = align(recpo_cfg)
    return {
        "budget": dataclasses.asdict(budget),
        "device": device,
        "model": model,
        "dtype": "bfloat16",
        "lora": {"r": sft_cfg.model.lora_r, "alpha": sft_cfg.model.lora_alpha, "targets": sft_cfg.model.lora_targets},
        "sft": _figures(sft),
        "recpo": _figures(recpo) | {"candidates_per_example": 1 + budget.negatives},
        "sft_config": json.loads(json.dumps(dataclasses.asdict(sft_cfg), default=str)),
    }
