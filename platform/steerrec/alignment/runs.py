"""What alignment training keeps around the loop: examples, ranks, checkpoints, run folders.

A checkpoint folder holds the trainable weights (a LoRA adapter, or model.safetensors for
full fine-tuning), the tokenizer and state.pt (epoch, optimizer, metric history). A tiny
model's LoRA SFT resumes onto the same seeded random base (`build_tiny` is deterministic).
"""

from __future__ import annotations

import json
import logging
import platform
import shutil
import subprocess
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from steerrec.alignment.data import Example, build_examples

logger = logging.getLogger(__name__)

CHECKPOINTS = "checkpoints"
STATE_FILE = "state.pt"
WEIGHTS_FILE = "model.safetensors"
METRICS_FILE = "metrics.json"
RUN_FILE = "run.json"
CONFIG_FILE = "config.yaml"


def load_examples(cfg) -> dict[str, list[Example]]:
    """Examples per split from cfg.data (interactions and items), users cut to cfg.users."""
    from steerrec.data import io, schema

    inter = io.read_table(
        f"{cfg.data}/{schema.INTERACTIONS_FILE}", ["user_id", "item_id", "timestamp", "rating"]
    ).to_pandas()
    items = io.read_table(f"{cfg.data}/{schema.ITEMS_FILE}", ["item_id", "title"]).to_pandas()
    if cfg.users:
        keep = sorted(inter["user_id"].unique())[: cfg.users]
        inter = inter[inter["user_id"].isin(set(keep))]
    splits: dict[str, list[Example]] = {"train": [], "valid": [], "test": []}
    for ex in build_examples(inter, items, cfg.examples):
        splits[ex.split].append(ex)
    logger.info("examples: %s", {k: len(v) for k, v in splits.items()})
    return splits


def corpus(splits: dict[str, list[Example]]) -> list[str]:
    """Texts to train a tiny model's tokenizer on: every prompt and candidate title."""
    texts = [e.prompt() for e in splits["train"]]
    return texts + sorted({" " + c for exs in splits.values() for e in exs for c in e.candidates})


def epoch_examples(train: list[Example], cfg, epoch: int) -> list[Example]:
    """This epoch's shuffled training examples (at most cfg.max_train)."""
    order = np.random.default_rng([cfg.seed, epoch]).permutation(len(train))
    if cfg.max_train:
        order = order[: cfg.max_train]
    return [train[i] for i in order]


def pick_candidates(ex: Example, n_negatives: int, seed: int) -> list[int]:
    """[preferred] + n_negatives other candidates drawn at random (fixed per example)."""
    rng = np.random.default_rng([seed, ex.t, zlib.crc32(ex.user_id.encode())])
    others = [k for k in range(len(ex.candidates)) if k != ex.preferred]
    return [ex.preferred] + [others[k] for k in rng.choice(len(others), size=n_negatives, replace=False)]


def rank_and_world() -> tuple[int, int]:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def device(cfg):
    import torch

    if cfg.use_gpu and torch.cuda.is_available():
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def all_reduce_grads(params, world: int) -> None:
    """Average gradients over ranks (every rank holds the same parameters)."""
    if world == 1:
        return
    import torch
    import torch.distributed as dist

    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
        dist.all_reduce(p.grad)
        p.grad /= world


def validate(cfg, model, tokenizer, valid: list[Example], rank: int) -> dict[str, float]:
    """Greedy HR@1 and ValidRatio on the first cfg.max_valid valid examples (rank 0, shared)."""
    if not cfg.max_valid or not valid:
        return {}
    from steerrec.alignment.evaluate import score

    result = [None]
    if rank == 0:
        model.eval()
        metrics = score(model, tokenizer, valid[: cfg.max_valid], cfg.max_new_tokens)
        result = [{"valid_hr1": metrics["hr1"], "valid_ratio": metrics["valid_ratio"]}]
    if rank_and_world()[1] > 1:
        import torch.distributed as dist

        dist.broadcast_object_list(result, src=0)
    return result[0]


def _is_peft(model) -> bool:
    return hasattr(model, "peft_config")


def save_checkpoint(cfg, model, tokenizer, opt, epoch: int, history: list[dict]) -> str:
    """Write checkpoints/epoch-NNNN under cfg.out (atomically) and prune old ones."""
    import torch
    from safetensors.torch import save_model

    root = Path(cfg.out) / CHECKPOINTS
    final, tmp = root / f"epoch-{epoch:04d}", root / f".epoch-{epoch:04d}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    if _is_peft(model):
        model.save_pretrained(tmp)
    else:
        save_model(model, str(tmp / WEIGHTS_FILE))
    tokenizer.save_pretrained(tmp)
    torch.save({"epoch": epoch, "optimizer": opt.state_dict(), "history": history}, tmp / STATE_FILE)
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    for old in sorted(root.glob("epoch-*"))[: -cfg.keep_checkpoints]:
        shutil.rmtree(old)
    return str(final)


def latest_checkpoint(out: str) -> str | None:
    """The newest complete checkpoint folder under `out`, if any."""
    if not out:
        return None
    done = sorted(p for p in (Path(out) / CHECKPOINTS).glob("epoch-*") if (p / STATE_FILE).is_file())
    return str(done[-1]) if done else None


def restore_weights(model, resume: str | None, lora: bool):
    """Load a checkpoint's trainable weights into `model` (unchanged when resume is None)."""
    if resume is None:
        return model
    from safetensors.torch import load_file, load_model

    if lora:
        from peft import set_peft_model_state_dict

        set_peft_model_state_dict(model, load_file(str(Path(resume) / "adapter_model.safetensors")))
    else:
        load_model(model, str(Path(resume) / WEIGHTS_FILE))
    logger.info("resumed weights from %s", resume)
    return model


def load_state(resume: str | None, opt) -> dict[str, Any]:
    if resume is None:
        return {}
    import torch

    state = torch.load(Path(resume) / STATE_FILE, weights_only=False, map_location="cpu")
    opt.load_state_dict(state["optimizer"])
    return state


def load_tokenizer(path: str | Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(path))


def load_sft(run: str | Path):
    """(SFT model with its LoRA merged into the weights, tokenizer) from an SFT run folder."""
    import yaml

    from steerrec.alignment.model import ModelConfig, load_pretrained, merge_lora
    from steerrec.config import from_dict

    run = Path(run)
    saved = yaml.safe_load((run / CONFIG_FILE).read_text())["model"]
    sft_cfg = from_dict(ModelConfig, saved, str(run / CONFIG_FILE), "model")
    tokenizer = load_tokenizer(run)
    if sft_cfg.source == "tiny":
        from transformers import AutoModelForCausalLM

        return AutoModelForCausalLM.from_pretrained(str(run)), tokenizer
    from peft import PeftModel

    base, _ = load_pretrained(sft_cfg)
    return merge_lora(PeftModel.from_pretrained(base, str(run))), tokenizer


def load_run(run: str | Path):
    """(model, tokenizer) of a finished SFT or alignment run folder, for evaluation."""
    from peft import PeftModel

    from steerrec.alignment.model import merge_lora

    run = Path(run)
    info = json.loads((run / RUN_FILE).read_text())
    if info["stage"] == "sft":
        return load_sft(run)
    sft, tokenizer = load_sft(info["sft_run"])
    return merge_lora(PeftModel.from_pretrained(sft, str(run))), tokenizer


def write_run(cfg, stage: str, model, tokenizer, history: list[dict]) -> None:
    """Final run folder: weights, tokenizer, config.yaml, metrics.json, run.json."""
    from steerrec.alignment.model import merge_lora
    from steerrec.config import dump

    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    if stage == "sft" and cfg.model.source == "tiny":
        (merge_lora(model) if _is_peft(model) else model).save_pretrained(out)
    else:
        model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    dump(cfg, out / CONFIG_FILE)
    (out / METRICS_FILE).write_text(json.dumps(history, indent=1))
    (out / RUN_FILE).write_text(json.dumps(_run_info(cfg, stage), indent=1))


def _run_info(cfg, stage: str) -> dict[str, Any]:
    import importlib.metadata as md

    from steerrec.data import io, schema

    try:
        commit = (
            subprocess.run(
                ["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=Path(__file__).parent, timeout=10
            ).stdout.strip()
            or None
        )
    except (OSError, subprocess.SubprocessError):
        commit = None
    manifest = f"{cfg.data}/{schema.MANIFEST_FILE}"
    return {
        "stage": stage.split(":")[0],
        "loss": stage.split(":")[-1],
        "sft_run": cfg.sft_run,
        "git_commit": commit,
        "seed": cfg.seed,
        "data": cfg.data,
        "python": platform.python_version(),
        "manifest_sha256": io.sha256(manifest) if Path(manifest).exists() else None,
        "versions": {p: md.version(p) for p in ("torch", "transformers", "peft")},
    }


def ray_train_report(metrics: dict[str, Any]) -> None:
    """`report` for Ray Train workers: the "checkpoint" folder goes up as a Checkpoint."""
    import ray.train

    metrics = dict(metrics)
    path = metrics.pop("checkpoint", None)
    ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(path) if path else None)
