"""SFT then DPO, S-DPO, SimPO and RecPO on MovieLens-100k, with a RecPO lambda x beta sweep.

    python benchmarks/alignment_movielens.py --work /tmp/alignbench            # Qwen 0.5B, ~1 h on 2 idle cores
    python benchmarks/alignment_movielens.py --model tiny --work /tmp/tiny     # pipeline check, ~10 min

--model qwen (default): Qwen2.5-Coder-0.5B-Instruct (the PyPI GGUF, dequantized once and
run in bfloat16 with fp32 LoRA adapters), LoRA SFT, then each alignment loss from the SFT
model (a fresh LoRA; the reference is the SFT model). On 2 CPU cores a step of 4 prompts
takes ~10 s, so the example counts are small and the figures are a pipeline measurement
with wide error bars, not the paper's. --model tiny: a ~1.2M-parameter Llama trained from
scratch (full fine-tuning, prompt tokens in the loss); it never learns to copy a title, so
its HR@1 stays 0. Steps: prepare the dataset folder (unless --data), the zero-shot model
(qwen only), SFT, the four losses, evaluation on the test examples of --eval-users users
(HR@1, ValidRatio, probes), then a cut-down Ray Tune sweep of RecPO's lambda x beta with
ASHA on valid HR@1. Prints the tables; writes results.json and PNG plots under --work.
A rerun with the same --work reads finished runs back and goes on with the rest.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from steerrec.alignment.data import AlignmentDataConfig
from steerrec.alignment.evaluate import evaluate_run, plot, results_table
from steerrec.alignment.losses import LossConfig
from steerrec.alignment.model import ModelConfig
from steerrec.alignment.train import AlignConfig, align, train_sft
from steerrec.cluster import init_ray
from steerrec.logging_utils import setup_logging

REPO = Path(__file__).resolve().parents[1]

LOSSES = ("dpo", "sdpo", "simpo", "recpo")


def prepared(work: Path, data: str | None) -> str:
    if data:
        return data
    out = work / "ml100k"
    if not (out / "manifest.json").is_file():
        from steerrec.data.prepare import PrepareConfig, prepare

        prepare(
            PrepareConfig(format="movielens", input=str(REPO.parent / "shared/datasets/movielens_100k"), out=str(out))
        )
    return str(out)


# per model: SFT (lr, batch, full fine-tuning, prompt tokens in the loss), alignment lr, defaults
PRESETS = {
    "qwen": {
        "sft": {"lr": 1e-4, "batch_size": 4, "full_finetune": False, "sft_prompt_loss": False},
        "align_lr": 5e-5,
        "sft_examples": 160,
        "align_examples": 64,
        "eval_users": 50,
        "valid": 24,
        "sweep_examples": 24,
    },
    "tiny": {
        "sft": {"lr": 3e-3, "batch_size": 16, "full_finetune": True, "sft_prompt_loss": True},
        "align_lr": 1e-3,
        "sft_examples": 3000,
        "align_examples": 400,
        "eval_users": 200,
        "valid": 100,
        "sweep_examples": 150,
    },
}


def base_config(args, data: str) -> AlignConfig:
    if args.model == "qwen":
        model = ModelConfig(source="gguf", dtype="bfloat16")
    else:
        model = ModelConfig(
            hidden_size=args.hidden,
            num_layers=args.layers,
            num_heads=4,
            intermediate_size=4 * args.hidden,
            vocab_size=4096,
        )
    return AlignConfig(
        data=data,
        model=model,
        examples=AlignmentDataConfig(),
        threads=args.threads,
        max_valid=0,
        max_new_tokens=24,
        seed=args.seed,
        batch_size=4,
    )


def trained(fn, cfg: AlignConfig, eval_users: int, seed: int) -> tuple[dict, tuple[float, float]]:
    """Train and evaluate one run, or read a finished one back (a rerun resumes the benchmark)."""
    from steerrec.alignment.train import read_metrics

    results = Path(cfg.out) / "results.json"
    if not results.is_file():
        fn(cfg, lambda m: None)
        evaluate_run(cfg.out, eval_users, seed)
    last = read_metrics(cfg.out)[-1]
    return json.loads(results.read_text()), (last["examples_per_s"], last["train_seconds"])


def zero_shot(base: AlignConfig, args) -> dict:
    """The pretrained model before any training, on the same test users."""
    from steerrec.alignment.evaluate import eval_examples, evaluate
    from steerrec.alignment.model import load_pretrained

    test, probes = eval_examples(base, args.eval_users, args.seed)
    model, tokenizer = load_pretrained(base.model)
    return evaluate(model, tokenizer, test, probes, base.max_new_tokens)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", default="/tmp/alignbench")
    parser.add_argument("--data", help="a prepared MovieLens folder (default: prepare one under --work)")
    parser.add_argument("--model", choices=sorted(PRESETS), default="qwen")
    parser.add_argument("--hidden", type=int, default=128, help="tiny only")
    parser.add_argument("--layers", type=int, default=2, help="tiny only")
    for name in ("sft_examples", "align_examples", "eval_users", "valid", "sweep_examples"):
        parser.add_argument("--" + name.replace("_", "-"), type=int, help="default: the model's preset")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-sweep", action="store_true")
    args = parser.parse_args()
    preset = PRESETS[args.model]
    for name in ("sft_examples", "align_examples", "eval_users", "valid", "sweep_examples"):
        if getattr(args, name) is None:
            setattr(args, name, preset[name])
    setup_logging("INFO")
    work = Path(args.work).absolute()
    base = base_config(args, prepared(work, args.data))
    rows, speed = {}, {}
    if args.model == "qwen":
        done = work / "zero-shot.json"
        if not done.is_file():
            done.write_text(json.dumps(zero_shot(base, args), indent=1))
        rows["zero-shot"] = json.loads(done.read_text())
    sft = AlignConfig(**{**base.__dict__, "out": str(work / "sft"), **preset["sft"], "max_train": args.sft_examples})
    rows["sft"], speed["sft"] = trained(train_sft, sft, args.eval_users, args.seed)
    print(f"sft: {speed['sft'][1]:.0f} s, {speed['sft'][0]:.2f} examples/s, hr1 {rows['sft']['hr1']:.3f}", flush=True)
    for loss in LOSSES:
        cfg = AlignConfig(
            **{
                **base.__dict__,
                "out": str(work / loss),
                "sft_run": sft.out,
                "loss": LossConfig(name=loss),
                "lr": preset["align_lr"],
                "max_train": args.align_examples,
            }
        )
        rows[loss], speed[loss] = trained(align, cfg, args.eval_users, args.seed)
        print(
            f"{loss}: {speed[loss][1]:.0f} s, {speed[loss][0]:.2f} examples/s, hr1 {rows[loss]['hr1']:.3f}", flush=True
        )
    for name, r in rows.items():
        r["train_ex_per_s"], r["train_s"] = speed.get(name, (0.0, 0.0))
    columns = ("n", "hr1", "valid_ratio", "adherence", "avoidance", "least_preferred", "train_ex_per_s", "train_s")
    model = (
        "Qwen2.5-Coder-0.5B-Instruct (bf16, LoRA)"
        if args.model == "qwen"
        else f"tiny Llama {args.hidden}x{args.layers} from scratch"
    )
    print(
        f"\nMovieLens-100k, {model}, SFT {args.sft_examples} / align {args.align_examples} examples, "
        f"test users {args.eval_users}\n"
    )
    print(results_table(rows, columns))
    plot(rows, work / "alignment_movielens.png")
    (work / "results.json").write_text(json.dumps(rows, indent=1, default=float))
    if not args.no_sweep:
        print("\n" + sweep(base, sft.out, work, args, preset["align_lr"]), flush=True)


def _tune_sweep_module():
    """tune/_sweep.py, the Tune side of the sweeps (the library never imports Ray Tune).

    tune/ holds scripts, not a package: the module is loaded from its file, under its own
    name `_sweep` (as the tune/ scripts see it), without touching sys.path.
    """
    import importlib.util

    if "_sweep" not in sys.modules:
        spec = importlib.util.spec_from_file_location("_sweep", REPO / "tune" / "_sweep.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules["_sweep"] = module
        spec.loader.exec_module(module)
    return sys.modules["_sweep"]


def sweep(base: AlignConfig, sft_run: str, work: Path, args, lr: float) -> str:
    """RecPO lambda x beta, 2 epochs each, ASHA on valid HR@1 (one trial at a time)."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    sweep_module = _tune_sweep_module()
    run_sweep, summarise = sweep_module.run_sweep, sweep_module.summarise

    import ray
    from ray import tune

    # address="local": a cluster of its own, even when another one runs on the machine
    init_ray(num_cpus=2, include_dashboard=False, configure_logging=False)
    cfg = AlignConfig(
        **{
            **base.__dict__,
            "sft_run": sft_run,
            "loss": LossConfig(name="recpo"),
            "lr": lr,
            "max_valid": args.valid,
            "epochs": 2,
            "max_train": args.sweep_examples,
        }
    )
    space = {"loss.recpo.lam": tune.grid_search([0.5, 2.0]), "loss.recpo.beta": tune.grid_search([0.1, 1.0])}
    start = time.perf_counter()
    results = run_sweep(cfg, space, work / "sweeps", "recpo_lam_beta", cpus_per_trial=1, max_concurrent=1)
    params = ["loss.recpo.beta", "loss.recpo.lam"]
    table = summarise(results, params, work / "sweep_lam_beta.png", group="loss.recpo.beta")
    ray.shutdown()
    return f"RecPO sweep (ratio margin), {time.perf_counter() - start:.0f} s\n\n{table}"


if __name__ == "__main__":
    main()
