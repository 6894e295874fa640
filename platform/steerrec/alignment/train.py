"""SFT, then preference alignment (DPO, S-DPO, SimPO, RecPO) of an LLM recommender.

    train_sft(cfg, report)   # next-item title after the prompt (RecPO Eq. 1)
    align(cfg, report)       # cfg.sft_run -> merge SFT LoRA, train a fresh LoRA with cfg.loss

Both are plain per-worker functions: `report(metrics)` gets one dict per epoch (with
"checkpoint": the folder just written, on rank 0). Under torch.distributed (Ray Train)
each rank takes a shard of the examples and LoRA gradients are averaged by all-reduce
(no DDP: candidate scoring runs several forwards per backward). `fit_sft`/`fit_align`
run them on Ray Train's TorchTrainer.

Run folder (`cfg.out`): config.yaml, run.json, metrics.json, tokenizer files, the model
(SFT of a tiny model: the full merged weights; otherwise adapter_model.safetensors) and
checkpoints/epoch-NNNN/ (model + state.pt) from which a rerun resumes.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from steerrec.alignment import runs
from steerrec.alignment.data import AlignmentDataConfig, Example
from steerrec.alignment.losses import MARGIN_FORMS, LossOutput, get_loss
from steerrec.alignment.model import ModelConfig

logger = logging.getLogger(__name__)

Report = Callable[[dict[str, Any]], None]
# which inputs each preference loss reads: the reference policy? per-token means?
LOSS_INPUTS = {"dpo": "reference", "sdpo": "reference", "recpo": "reference", "simpo": "mean"}


@dataclass
class AlignConfig:
    data: str = ""  # dataset folder with interactions.parquet and items.parquet
    out: str = ""  # run folder (local path or shared mount)
    sft_run: str = ""  # align only: the SFT run folder to start from
    model: ModelConfig = field(default_factory=ModelConfig)
    examples: AlignmentDataConfig = field(default_factory=AlignmentDataConfig)
    loss: str = "recpo"  # align: dpo | sdpo | simpo | recpo
    beta: float = 1.0
    lam: float = 2.0  # RecPO margin scale (lambda)
    margin: str = "ratio"  # RecPO margin form: ratio | difference | log_ratio
    gamma: float = 0.5  # SimPO target margin
    full_finetune: bool = False  # SFT trains every weight (a tiny model from scratch)
    sft_prompt_loss: bool = False  # SFT also models the prompt tokens (a model from scratch)
    lr: float = 1e-5  # the paper's; tiny models need ~1e-3
    weight_decay: float = 0.0
    epochs: int = 1
    batch_size: int = 4
    grad_accum: int = 1
    max_grad_norm: float = 1.0
    share_prompt: bool = True  # reuse each prompt's KV cache across its candidates
    users: int = 0  # keep only the first n users, sorted by id (0 = all)
    max_train: int = 0  # training examples per epoch, sampled (0 = all)
    max_valid: int = 200  # valid examples scored by greedy HR@1 after each epoch (0 = none)
    max_new_tokens: int = 32
    seed: int = 0
    threads: int = 0  # torch threads per worker (0 = torch's default)
    num_workers: int = 1  # Ray Train workers (fit_sft / fit_align)
    cpus_per_worker: int = 1
    use_gpu: bool = False
    keep_checkpoints: int = 2

    def __post_init__(self) -> None:
        if self.loss not in LOSS_INPUTS:
            raise ValueError(f"loss must be one of {sorted(LOSS_INPUTS)}, got {self.loss!r}")
        if self.margin not in MARGIN_FORMS:
            raise ValueError(f"margin must be one of {MARGIN_FORMS}, got {self.margin!r}")
        for name in ("beta", "lr"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        for name in ("epochs", "batch_size", "grad_accum", "num_workers", "cpus_per_worker", "max_new_tokens"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("lam", "gamma", "users", "max_train", "max_valid", "threads", "weight_decay"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")


def preference_loss(
    name: str, total, mean, ref_total, scores, beta: float, lam: float, margin: str, gamma: float
) -> LossOutput:
    """The loss `name` on [B, 1 + K] candidate log-probs; column 0 is the preferred item.

    total/mean: the policy's summed / per-token-mean log-probs; ref_total: the reference's
    summed log-probs (None for SimPO); scores: RecPO preference scores.
    """
    fn = get_loss(name)
    if name == "simpo":
        return fn(mean[:, 0], mean[:, 1:], beta=beta, gamma=gamma)
    args = (total[:, 0], total[:, 1:], ref_total[:, 0], ref_total[:, 1:])
    if name == "recpo":
        return fn(*args, scores[:, 0], scores[:, 1:], beta=beta, lam=lam, margin=margin)
    return fn(*args, beta=beta)


def train_sft(cfg: AlignConfig, report: Report, resume_from: str | None = None) -> dict[str, Any]:
    """Supervised fine-tuning on the next item's title; returns the final metrics."""
    from steerrec.alignment.model import add_lora, build_tiny, build_tokenizer, load_pretrained

    _setup(cfg)
    splits = runs.load_examples(cfg)
    resume = resume_from or runs.latest_checkpoint(cfg.out)
    if cfg.model.source == "tiny":
        tokenizer = (
            runs.load_tokenizer(resume) if resume else build_tokenizer(runs.corpus(splits), cfg.model.vocab_size)
        )
        model = build_tiny(cfg.model, tokenizer, cfg.seed)
    else:
        model, tokenizer = load_pretrained(cfg.model)
    if not cfg.full_finetune:
        model = add_lora(model, cfg.model)
    model = runs.restore_weights(model, resume, lora=not cfg.full_finetune)

    def step(batch: list[Example]) -> LossOutput:
        return _sft_step(model, tokenizer, batch, cfg.sft_prompt_loss)

    return _fit(cfg, "sft", model, tokenizer, splits, step, report, resume)


def align(cfg: AlignConfig, report: Report, resume_from: str | None = None) -> dict[str, Any]:
    """Preference alignment from cfg.sft_run with cfg.loss; returns the final metrics."""
    from steerrec.alignment.model import add_lora

    if not cfg.sft_run:
        raise ValueError("align needs sft_run: the SFT run folder to start from")
    _setup(cfg)
    splits = runs.load_examples(cfg)
    resume = resume_from or runs.latest_checkpoint(cfg.out)
    sft, tokenizer = runs.load_sft(cfg.sft_run)
    model = runs.restore_weights(add_lora(sft, cfg.model), resume, lora=True)
    n_neg = 1 if cfg.loss == "dpo" else cfg.examples.n_negatives

    def step(batch: list[Example]) -> LossOutput:
        return _preference_step(cfg, model, tokenizer, batch, n_neg)

    return _fit(cfg, f"align:{cfg.loss}", model, tokenizer, splits, step, report, resume)


def _sft_step(model, tokenizer, batch: list[Example], prompt_loss: bool = False) -> LossOutput:
    from steerrec.alignment.model import completion_logps, encode

    prompts, comps = encode(tokenizer, [e.prompt() for e in batch], [[e.candidates[e.target]] for e in batch])
    targets = [c[0] for c in comps]
    if prompt_loss:  # every token after the first is a target
        prompts, targets = [p[:1] for p in prompts], [p[1:] + t for p, t in zip(prompts, targets)]
    logps, mask = completion_logps(model, prompts, targets)
    return get_loss("sft")(logps, mask)


def _preference_step(cfg: AlignConfig, model, tokenizer, batch: list[Example], n_neg: int) -> LossOutput:
    import torch

    from steerrec.alignment.model import candidate_logps, encode, reference

    picks = [runs.pick_candidates(e, n_neg, cfg.seed) for e in batch]  # [B][1 + K], preferred first
    titles = [[e.candidates[k] for k in row] for e, row in zip(batch, picks)]
    scores = torch.tensor([[e.scores[k] for k in row] for e, row in zip(batch, picks)])
    prompts, comps = encode(tokenizer, [e.prompt() for e in batch], titles)
    total, mean = candidate_logps(model, prompts, comps, cfg.share_prompt)
    ref_total = None
    if LOSS_INPUTS[cfg.loss] == "reference":
        with reference(model) as ref:
            ref_total, _ = candidate_logps(ref, prompts, comps, cfg.share_prompt)
    scores = scores.to(total.device)
    return preference_loss(cfg.loss, total, mean, ref_total, scores, cfg.beta, cfg.lam, cfg.margin, cfg.gamma)


def _setup(cfg: AlignConfig) -> None:
    import torch

    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)


def _fit(cfg, stage, model, tokenizer, splits, step, report: Report, resume: str | None) -> dict[str, Any]:
    """Epochs of `step` over this rank's shard; evaluate, checkpoint and report each epoch."""
    import torch

    rank, world = runs.rank_and_world()
    model.to(runs.device(cfg))
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    state = runs.load_state(resume, opt)
    history: list[dict[str, Any]] = state.get("history", [])
    metrics: dict[str, Any] = history[-1] if history else {}
    for epoch in range(state.get("epoch", 0) + 1, cfg.epochs + 1):
        shard = runs.epoch_examples(splits["train"], cfg, epoch)[rank::world]
        metrics = _epoch(cfg, model, opt, params, shard, step, world)
        metrics.update(epoch=epoch, stage=stage, **runs.validate(cfg, model, tokenizer, splits["valid"], rank))
        history.append(dict(metrics))
        checkpoint = runs.save_checkpoint(cfg, model, tokenizer, opt, epoch, history) if rank == 0 else None
        report({**metrics, **({"checkpoint": checkpoint} if checkpoint else {})})
    if rank == 0:
        runs.write_run(cfg, stage, model, tokenizer, history)
    return metrics


def _epoch(cfg, model, opt, params, shard: list[Example], step, world: int) -> dict[str, Any]:
    import torch

    model.train()
    sums: dict[str, float] = {}
    n_batches, start = 0, time.perf_counter()
    batches = [shard[i : i + cfg.batch_size] for i in range(0, len(shard), cfg.batch_size)]
    for i, batch in enumerate(batches):
        out = step(batch)
        (out.loss / cfg.grad_accum).backward()
        if (i + 1) % cfg.grad_accum == 0 or i + 1 == len(batches):
            runs.all_reduce_grads(params, world)
            torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
            opt.step()
            opt.zero_grad(set_to_none=True)
        for key, value in out.metrics().items():
            sums[key] = sums.get(key, 0.0) + value
        n_batches += 1
        if i % 50 == 0:
            logger.info("batch %d/%d loss %.4f", i + 1, len(batches), out.metrics()["loss"])
    seconds = time.perf_counter() - start
    result = {k: v / max(n_batches, 1) for k, v in sums.items()}
    result.update(
        train_examples=len(shard) * world,
        train_seconds=seconds,
        examples_per_s=len(shard) * world / seconds if seconds > 0 else 0.0,
    )
    return result


def _ray_worker(config: dict[str, Any]) -> dict[str, Any]:
    """TorchTrainer loop: rebuild the config, resume from Train's checkpoint, run the stage."""
    import ray.train

    from steerrec.config import from_dict

    cfg = from_dict(AlignConfig, config["cfg"], "train_loop_config")
    checkpoint = ray.train.get_checkpoint()
    resume = checkpoint.to_directory() if checkpoint else None
    fn = train_sft if config["stage"] == "sft" else align
    return fn(cfg, runs.ray_train_report, resume)


def _fit_ray(stage: str, cfg: AlignConfig, storage_path: str, name: str):
    from ray.train import RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    from steerrec.config import to_dict

    trainer = TorchTrainer(
        _ray_worker,
        train_loop_config={"stage": stage, "cfg": to_dict(cfg)},
        scaling_config=ScalingConfig(
            num_workers=cfg.num_workers, use_gpu=cfg.use_gpu, resources_per_worker={"CPU": cfg.cpus_per_worker}
        ),
        run_config=RunConfig(name=name, storage_path=str(storage_path)),
    )
    return trainer.fit()


def fit_sft(cfg: AlignConfig, storage_path: str, name: str = "sft"):
    """`train_sft` on Ray Train (cfg.num_workers workers); returns Train's Result."""
    return _fit_ray("sft", cfg, storage_path, name)


def fit_align(cfg: AlignConfig, storage_path: str, name: str = "align"):
    """`align` on Ray Train (cfg.num_workers workers); returns Train's Result."""
    return _fit_ray("align", cfg, storage_path, name)


def read_metrics(out: str | Path) -> list[dict[str, Any]]:
    """The per-epoch metrics a finished run wrote to metrics.json."""
    return json.loads((Path(out) / runs.METRICS_FILE).read_text())
