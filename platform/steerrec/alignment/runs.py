"""An SFT or alignment run folder: written at the end of training, loaded for evaluation.

<out>/config.yaml    the AlignConfig (steerrec.config.load reads it back)
<out>/run.json       steerrec.run_folder.RunInfo, kind "sft" or "align"; details: model, loss
                     and its settings, sft_run, epochs
<out>/metrics.json   one row per epoch (steerrec.train.loop's history)
<out>/...            the model: a tiny SFT run keeps the full merged weights (config.json +
                     model.safetensors); LoRA runs adapter_model.safetensors + adapter_config.json;
                     full fine-tuning of a pretrained model the whole model; and the tokenizer
<out>/checkpoints/   local runs (train_sft / align): the loop's checkpoint_NNNN, a rerun resumes
<out>/ray/           Ray runs (jobs): Ray Train's storage; a rerun of the same name resumes
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict
from pathlib import Path
from typing import Any

from steerrec.run_folder import (
    CONFIG_FILE,
    METRICS_FILE,
    RUN_FILE,
    describe_input,
    new_run_info,
    read_run_info,
    require_file,
    write_json,
    write_run_info,
)

logger = logging.getLogger(__name__)

CHECKPOINTS = "checkpoints"
KINDS = ("sft", "align")


def write_run(cfg, stage: str, policy, tokenizer, summary: dict[str, Any]) -> None:
    """The run folder cfg.out: weights, tokenizer, config.yaml, metrics.json, run.json."""
    from steerrec.alignment.model import merge_lora
    from steerrec.config import dump

    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    if stage == "sft" and cfg.model.source == "tiny" and hasattr(policy, "peft_config"):
        policy = merge_lora(policy)
    policy.save_pretrained(out)
    tokenizer.save_pretrained(out)
    dump(cfg, out / CONFIG_FILE)
    write_json(out / METRICS_FILE, summary["history"])
    inputs = {"data": describe_input(cfg.data)}
    details: dict[str, Any] = {"model": asdict(cfg.model), "epochs": summary["epoch"]}
    if stage == "align":
        inputs["sft_run"] = describe_input(str(Path(cfg.sft_run) / RUN_FILE), manifest=False)
        details |= {"loss": cfg.loss.name, "loss_config": asdict(cfg.loss.section), "sft_run": cfg.sft_run}
    write_run_info(out, new_run_info(stage, cfg.seed, inputs, **details))


def read_metrics(out: str | Path) -> list[dict[str, Any]]:
    """The per-epoch metrics a finished run wrote to metrics.json."""
    return json.loads(require_file(out, METRICS_FILE).read_text())


def load_tokenizer(path: str | Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(path))


def load_sft(run: str | Path):
    """(SFT model with its LoRA merged into the weights, tokenizer) from an SFT run folder."""
    import yaml

    from steerrec.alignment.model import ModelConfig, load_pretrained, merge_lora
    from steerrec.config import from_dict

    run = Path(run)
    read_run_info(run, kinds=("sft",))
    config = require_file(run, CONFIG_FILE)
    sft_cfg = from_dict(ModelConfig, yaml.safe_load(config.read_text())["model"], str(config), "model")
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

    info = read_run_info(run, kinds=KINDS)
    if info.kind == "sft":
        return load_sft(run)
    sft, tokenizer = load_sft(info.details["sft_run"])
    return merge_lora(PeftModel.from_pretrained(sft, str(run))), tokenizer
