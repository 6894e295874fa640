"""SFT then DPO, S-DPO, SimPO and RecPO on MovieLens-100k with a small LM trained from scratch.

    python benchmarks/alignment_movielens.py --work /tmp/alignbench        # ~30 min on 2 busy cores

The model is a ~1.2M-parameter Llama trained from scratch on the prompts (SFT with the
prompt tokens in the loss; no pretrained weights: a real 0.5B step takes minutes on this
CPU), so HR@1 here measures the pipeline, not the paper's LLM figures. Steps: prepare the
dataset folder (unless --data), SFT (full fine-tuning), each alignment loss from the SFT model (fresh LoRA; the reference
is the SFT model), evaluation on the test examples of --eval-users users (HR@1,
ValidRatio, probes), then a cut-down Ray Tune sweep of RecPO's lambda x beta with ASHA on
valid HR@1. Prints the tables; writes results.json and PNG plots under --work.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tune"))

from steerrec.alignment.data import AlignmentDataConfig  # noqa: E402
from steerrec.alignment.evaluate import evaluate_run, plot, results_table  # noqa: E402
from steerrec.alignment.model import ModelConfig  # noqa: E402
from steerrec.alignment.train import AlignConfig, align, train_sft  # noqa: E402
from steerrec.logging_utils import setup_logging  # noqa: E402

LOSSES = ("dpo", "sdpo", "simpo", "recpo")


def prepared(work: Path, data: str | None) -> str:
    if data:
        return data
    out = work / "ml100k"
    if not (out / "manifest.json").is_file():
        from steerrec.data.prepare import PrepareConfig, prepare

        prepare(PrepareConfig(format="movielens", input=str(REPO.parent / "shared/datasets/movielens_100k"), out=str(out)))
    return str(out)


def base_config(args, data: str) -> AlignConfig:
    model = ModelConfig(hidden_size=args.hidden, num_layers=args.layers, num_heads=4,
                        intermediate_size=4 * args.hidden, vocab_size=4096)
    return AlignConfig(data=data, model=model, examples=AlignmentDataConfig(), threads=args.threads,
                       max_valid=args.valid, max_new_tokens=24, seed=args.seed)


def timed(fn, cfg) -> tuple[dict, float]:
    start = time.perf_counter()
    metrics = fn(cfg, lambda m: None)
    return metrics, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", default="/tmp/alignbench")
    parser.add_argument("--data", help="a prepared MovieLens folder (default: prepare one under --work)")
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--sft-examples", type=int, default=3000)
    parser.add_argument("--align-examples", type=int, default=400)
    parser.add_argument("--eval-users", type=int, default=200)
    parser.add_argument("--valid", type=int, default=100)
    parser.add_argument("--sweep-examples", type=int, default=150)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    setup_logging("WARNING")
    work = Path(args.work).absolute()
    base = base_config(args, prepared(work, args.data))
    rows, speed = {}, {}
    sft = AlignConfig(**{**base.__dict__, "out": str(work / "sft"), "full_finetune": True, "sft_prompt_loss": True, "lr": 3e-3,
                         "batch_size": 16, "max_train": args.sft_examples})
    metrics, seconds = timed(train_sft, sft)
    speed["sft"] = (metrics["examples_per_s"], seconds)
    rows["sft"] = evaluate_run(sft.out, args.eval_users, args.seed)
    for loss in LOSSES:
        cfg = AlignConfig(**{**base.__dict__, "out": str(work / loss), "sft_run": sft.out, "loss": loss,
                             "lr": 1e-3, "batch_size": 8, "max_train": args.align_examples})
        metrics, seconds = timed(align, cfg)
        speed[loss] = (metrics["examples_per_s"], seconds)
        rows[loss] = evaluate_run(cfg.out, args.eval_users, args.seed)
    for name, r in rows.items():
        r["train_ex_per_s"], r["train_s"] = speed[name]
    columns = ("n", "hr1", "valid_ratio", "adherence", "avoidance", "least_preferred", "train_ex_per_s", "train_s")
    print(f"\nMovieLens-100k, tiny Llama {args.hidden}x{args.layers} trained from scratch, "
          f"SFT {args.sft_examples} / align {args.align_examples} examples, test users {args.eval_users}\n")
    print(results_table(rows, columns))
    plot(rows, work / "alignment_movielens.png")
    print("\n" + sweep(base, sft.out, work, args))
    (work / "results.json").write_text(json.dumps(rows, indent=1, default=float))


def sweep(base: AlignConfig, sft_run: str, work: Path, args) -> str:
    """RecPO lambda x beta, 2 epochs each, ASHA on valid HR@1 (one trial at a time)."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray
    from ray import tune

    from _sweep import run_sweep, summarise

    ray.init(num_cpus=2, include_dashboard=False, configure_logging=False)
    cfg = AlignConfig(**{**base.__dict__, "sft_run": sft_run, "loss": "recpo", "lr": 1e-3, "batch_size": 8,
                         "epochs": 2, "max_train": args.sweep_examples})
    space = {"lam": tune.grid_search([0.5, 2.0]), "beta": tune.grid_search([0.1, 1.0])}
    start = time.perf_counter()
    results = run_sweep(cfg, space, work / "sweeps", "recpo_lam_beta", cpus_per_trial=1, max_concurrent=1)
    table = summarise(results, ["beta", "lam"], work / "sweep_lam_beta.png", group="beta")
    ray.shutdown()
    return f"RecPO sweep (ratio margin), {time.perf_counter() - start:.0f} s\n\n{table}"


if __name__ == "__main__":
    main()
