"""Preference alignment of an SFT'd LLM recommender (DPO, S-DPO, SimPO, RecPO) on Ray Train.

    ray job submit --working-dir . -- python jobs/align.py --loss recpo \
        --sft-run /abs/runs/sft --data /abs/data/ml100k --out /abs/runs/recpo loss.recpo.lam=2 loss.recpo.margin=ratio

The SFT LoRA is merged into the base weights and a fresh LoRA is trained, so the
reference policy is the SFT model with the adapter disabled. Trailing key=value pairs
override AlignConfig (steerrec.alignment.config; each loss's settings under loss.<name>);
a rerun resumes from the last checkpoint.
`--eval-users N` evaluates on the test users afterwards (results.json in the run folder).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from steerrec.alignment.cli import add_run_args, run_job
from steerrec.alignment.losses import PREFERENCE_LOSSES
from steerrec.alignment.train import fit_align
from steerrec.cli import main
from steerrec.cluster import init_ray


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loss", required=True, choices=sorted(PREFERENCE_LOSSES))
    parser.add_argument("--sft-run", required=True, help="run folder of jobs/train_sft.py")
    return add_run_args(parser)


def run(args: argparse.Namespace) -> None:
    init_ray()
    flags = {"loss.name": args.loss, "sft_run": str(Path(args.sft_run).absolute())}
    run_job(args, fit_align, f"align-{args.loss}", **flags)


if __name__ == "__main__":
    main(run, parser())
