"""Supervised fine-tuning of an LLM recommender (next-item title) on Ray Train.

    ray job submit --working-dir . -- python jobs/train_sft.py \
        --data /abs/data/ml100k --out /abs/runs/sft model.source=hf model.name=Qwen/Qwen2-7B use_gpu=true

A tiny model trained from scratch (CPU): `full_finetune=true lr=1e-3`. Trailing key=value
pairs override AlignConfig (steerrec.alignment.config); `--config` reads a YAML first. The
run folder is written on worker 0 (local path or shared mount); a rerun resumes from its
last checkpoint. `--eval-users N` evaluates on the test users afterwards (results.json).
"""

from __future__ import annotations

import argparse

from steerrec.alignment.cli import add_run_args, run_job
from steerrec.alignment.train import fit_sft
from steerrec.cli import main
from steerrec.cluster import init_ray


def run(args: argparse.Namespace) -> None:
    init_ray()
    run_job(args, fit_sft, "sft")


if __name__ == "__main__":
    main(run, add_run_args(argparse.ArgumentParser(description=__doc__.splitlines()[0])))
