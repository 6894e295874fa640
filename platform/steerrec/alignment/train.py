"""SFT, then preference alignment (DPO, S-DPO, SimPO, RecPO) of an LLM recommender.

    train_sft(cfg, report)            # next-item title after the prompt (RecPO Eq. 1), in this process
    align(cfg, report)                # cfg.sft_run -> merge SFT LoRA, train a fresh LoRA with cfg.loss
    fit_sft(cfg, storage) / fit_align(cfg, storage)   # the same on Ray Train (cfg.num_workers workers)

Every path runs steerrec.train.loop (the loop recommenders and semantic IDs use too) on an
`AlignTask`: DDP gradient sync under Ray, gradient accumulation, tqdm progress, a
checkpoint per epoch (safetensors + JSON) and resumption: a local rerun resumes from
<out>/checkpoints, a Ray rerun of the same name and storage from Ray Train's latest
checkpoint, and a killed worker from its last checkpoint (cfg.max_failures).
Worker 0 writes the run folder (steerrec.alignment.runs) with the last epoch's model.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from steerrec.alignment.config import AlignConfig
from steerrec.alignment.examples import load_examples
from steerrec.alignment.runs import CHECKPOINTS, read_metrics, write_run
from steerrec.alignment.task import AlignTask

logger = logging.getLogger(__name__)

__all__ = ["AlignConfig", "align", "fit_align", "fit_sft", "read_metrics", "run_stage", "train_sft"]

Report = Callable[[dict[str, Any]], None]


def run_stage(cfg: AlignConfig, stage: str, session: Any) -> dict[str, Any]:
    """One worker's whole stage: examples, the loop, and (worker 0) the run folder; the loop's summary."""
    from steerrec.train.loop import run_loop

    task = AlignTask(cfg, stage, load_examples(cfg))
    summary = run_loop(task, cfg.loop(stage), session)
    if session.rank == 0:
        write_run(cfg, stage, task.policy, task.tokenizer, summary)
    return summary


def _local(cfg: AlignConfig, stage: str, report: Report | None, resume_from: str | None) -> dict[str, Any]:
    from steerrec.train.loop import LocalSession, latest_checkpoint

    root = Path(cfg.out) / CHECKPOINTS
    resume = Path(resume_from) if resume_from else latest_checkpoint(root)
    root.mkdir(parents=True, exist_ok=True)
    session = LocalSession(root, report, resume, device="cuda" if cfg.use_gpu else "cpu")
    return run_stage(cfg, stage, session)


def train_sft(cfg: AlignConfig, report: Report | None = None, resume_from: str | None = None) -> dict[str, Any]:
    """Supervised fine-tuning in this process; `report` gets each epoch's metrics. Returns the summary."""
    return _local(cfg, "sft", report, resume_from)


def align(cfg: AlignConfig, report: Report | None = None, resume_from: str | None = None) -> dict[str, Any]:
    """Preference alignment from cfg.sft_run with cfg.loss, in this process. Returns the summary."""
    return _local(cfg, "align", report, resume_from)


def _ray_worker(config: dict[str, Any]) -> dict[str, Any]:
    """TorchTrainer's per-worker function: rebuild the config, run the stage in a RaySession."""
    from steerrec.config import from_dict
    from steerrec.train.loop import RaySession

    cfg = from_dict(AlignConfig, config["cfg"], "train_loop_config")
    return run_stage(cfg, config["stage"], RaySession())


def _fit_ray(stage: str, cfg: AlignConfig, storage_path: str, name: str):
    from steerrec.config import to_dict
    from steerrec.train.loop import fit_ray

    config = {"stage": stage, "cfg": to_dict(cfg)}
    return fit_ray(_ray_worker, config, cfg.scaling(), str(storage_path), name, keep=cfg.keep_checkpoints)


def fit_sft(cfg: AlignConfig, storage_path: str, name: str = "sft"):
    """`train_sft` on Ray Train (cfg.num_workers workers); returns Train's Result."""
    return _fit_ray("sft", cfg, storage_path, name)


def fit_align(cfg: AlignConfig, storage_path: str, name: str = "align"):
    """`align` on Ray Train (cfg.num_workers workers); returns Train's Result."""
    return _fit_ray("align", cfg, storage_path, name)
