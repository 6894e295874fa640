"""The GPU check: vLLM, Ray Train, alignment and serving paths on one lent GPU, with their ratios.

    python -m benchmarks.gpu.check --dry-run          # here, on CPU: the plan, configs, staging (seconds)
    python -m benchmarks.gpu.check --cpu-smoke        # here: parts train, serve, align at tiny sizes on CPU
    python -m benchmarks.gpu.check --out $OUT/gpu_check.json      # on the GPU machine, after staging

Staging (the GPU machine has torch but no Ray, no vLLM and no internet; MACHINE.md):
1. here: `../shared/gpu/stage.sh` (Ray 2.60 + vLLM 0.22 wheels in `.gpu/part.NN/`, ~400 MB);
   `--ray-only` is enough for `--parts train,align,serve`;
2. one device run per part, back to back: `mkdir -p /root/stage && cp .gpu/part.NN/* /root/stage/`
   with carry [".gpu/part.NN"]; the last part's run also does `bash .gpu/part.LAST/install.sh`;
3. while the machine is still warm, the check itself:
   `export PYTHONPATH=.:platform:/tmp/site PATH=/tmp/site/bin:$PATH PYTHONUNBUFFERED=1;
   python -m benchmarks.gpu.check --out $OUT/gpu_check.json 2>&1 | tee $OUT/gpu_check.log`.

It runs `tests/gpu` first and stops if they fail, then the parts in the order serve,
train, align, vllm (cheapest first), writing the JSON after each part so a run cut short
keeps what it measured; a part that raises is recorded with its error and the others go on.

Planned duration per part on one H100 after staging (a plan, not a measured figure):
tests/gpu ~20 s; serve ~25 s (build the run folder, 10 s per batch size); train ~50 s
(Ray start, 3 x 40 steps three times: plain, local loop, Ray Train, and one beam-search
validation); align ~45 s (write a 0.5B random model, 2 x 12 SFT steps, reload + merge,
2 x 12 RecPO steps); vllm ~220 s (two engine starts, ~100 s and, sharing the first's
compile cache, ~50 s; ~1,350 prompts of <= 128 tokens out per side). Total ~6 min.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

from benchmarks.gpu import dry_run
from benchmarks.gpu.plan import PARTS, REPO, Plan, cpu_smoke_plan

logger = logging.getLogger("gpu_check")
ORDER = ("serve", "train", "align", "vllm")


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="check plan, configs and staging; no GPU, no vLLM")
    parser.add_argument("--cpu-smoke", action="store_true", help="train, serve and align at tiny sizes on CPU")
    parser.add_argument("--parts", default="", help=f"comma-separated subset of {','.join(PARTS)}")
    parser.add_argument("--out", type=Path, help="the JSON of figures (default $OUT/gpu_check.json or outputs/)")
    parser.add_argument("--work", type=Path, help="scratch folder (default: a new temporary one)")
    parser.add_argument("--tokenizer", help="part vllm: a tokenizer folder to use instead of the trained BPE")
    parser.add_argument("--skip-tests", action="store_true", help="do not run tests/gpu first")
    args = parser.parse_args(argv)
    default = ("train", "serve", "align") if args.cpu_smoke else PARTS
    args.parts = tuple(p.strip() for p in args.parts.split(",") if p.strip()) or default
    unknown = sorted(set(args.parts) - set(PARTS))
    if unknown:
        parser.error(f"--parts: unknown {unknown}; known: {list(PARTS)}")
    if args.cpu_smoke and "vllm" in args.parts:
        parser.error("--parts: vllm needs a GPU and vLLM; --cpu-smoke runs train, serve and align")
    if args.out is None:
        base = Path(os.environ["OUT"]) if os.environ.get("OUT") else REPO / "outputs"
        args.out = base / ("gpu_check_cpu_smoke.json" if args.cpu_smoke else "gpu_check.json")
    return args


def environment() -> dict:
    import torch

    info = {"python": sys.version.split()[0], "torch": torch.__version__, "cuda": torch.cuda.is_available()}
    if info["cuda"]:
        info["gpu"] = torch.cuda.get_device_name(0)
    for name in ("ray", "vllm", "transformers", "peft"):
        try:
            info[name] = __import__(name).__version__
        except ImportError:
            info[name] = None
    return info


def run_part(name: str, plan: Plan, work: Path, device: str, args: argparse.Namespace) -> dict:
    from benchmarks.gpu import align_part, serve_part, train_part, vllm_part

    if name == "serve":
        return serve_part.run(work / name, plan.serve, device)
    if name == "train":
        try:
            return train_part.run(plan.train, device)
        finally:
            import ray

            ray.shutdown()  # the vLLM job starts a Ray of its own
    data = vllm_part.prepare_world(work / "world", 1000)  # the demo's world, shared by align and vllm
    if name == "align":
        return align_part.run(work / name, data, plan.align, device)
    return vllm_part.run(work / name, data, plan.vllm, args.tokenizer)


def _free_gpu() -> None:
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def measure(args: argparse.Namespace) -> dict:
    import torch

    device = "cpu" if args.cpu_smoke else "cuda"
    if device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("error: no CUDA device; use --dry-run or --cpu-smoke here")
    plan = cpu_smoke_plan() if args.cpu_smoke else Plan()
    work = args.work or Path(tempfile.mkdtemp(prefix="gpu-check-"))
    report = {"environment": environment(), "plan": plan.to_dict(), "parts": {}, "seconds": {}}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if not (args.cpu_smoke or args.skip_tests):
        started = time.perf_counter()
        tests = subprocess.run([sys.executable, "-m", "pytest", "tests/gpu", "-q", "-x"], cwd=REPO)
        report["seconds"]["tests_gpu"] = round(time.perf_counter() - started, 1)
        if tests.returncode != 0:
            raise SystemExit(f"error: tests/gpu failed (exit {tests.returncode}); the parts were not run")
    for name in (p for p in ORDER if p in args.parts):
        started = time.perf_counter()
        logger.info("part %s: planned ~%d s", name, plan.planned_s[name])
        try:
            report["parts"][name] = run_part(name, plan, work, device, args)
        except Exception as exc:  # the other parts still run; the JSON says what broke
            logger.error("part %s failed: %s", name, exc)
            report["parts"][name] = {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}
        report["seconds"][name] = round(time.perf_counter() - started, 1)
        _free_gpu()
        args.out.write_text(json.dumps(report, indent=1, default=str))
    return report


def _get(d: dict, *keys, fmt: str = "{:.2f}") -> str:
    for key in keys:
        if not isinstance(d, dict) or d.get(key) is None:
            return "-"
        d = d[key]
    return fmt.format(d) if isinstance(d, (int, float)) else str(d)


def table(report: dict) -> str:
    p = report["parts"]
    rows = [
        ("vllm: job (ray.data.llm) prompts/s, steady", _get(p, "vllm", "job", "prompts_per_s")),
        ("vllm: raw LLM.generate prompts/s", _get(p, "vllm", "raw_vllm", "prompts_per_s")),
        ("vllm: ratio job / raw (goal >= 0.95)", _get(p, "vllm", "ratio_steady", fmt="{:.3f}")),
        ("vllm: engine start s (raw; job first batch)", _get(p, "vllm", "raw_vllm", "engine_start_s", fmt="{:.0f}")),
        ("train: plain PyTorch steps/s (epoch)", _get(p, "train", "plain_pytorch", "epoch_steps_per_s")),
        ("train: Ray Train steps/s (epoch)", _get(p, "train", "loop_ray_train", "epoch_steps_per_s")),
        ("train: ratio Ray / plain (goal >= 0.95)", _get(p, "train", "ratio_epoch", fmt="{:.3f}")),
        ("train: one Office epoch, s", _get(p, "train", "office_epoch", "seconds", fmt="{:.1f}")),
        ("align: LoRA SFT examples/s", _get(p, "align", "sft", "examples_per_s")),
        ("align: RecPO examples/s", _get(p, "align", "recpo", "examples_per_s")),
    ]
    rows += [
        (f"serve: Mender-Tok requests/s at {k.split('_')[1]}", f"{v['requests_per_s']:.1f}")
        for k, v in p.get("serve", {}).items()
        if k.startswith("batch_")
    ]
    errors = [(f"{name}: FAILED", part["error"][:70]) for name, part in p.items() if "error" in part]
    env = report["environment"]
    head = f"device: {env.get('gpu', 'cpu')}, torch {env['torch']}, ray {env['ray']}, vllm {env['vllm']}"
    return "\n".join([head, *(f"{what:<48}{value:>14}" for what, value in rows + errors)])


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if args.dry_run:
        problems = dry_run.check(args.parts, args.tokenizer)
        print(dry_run.summary(args.parts))
        for problem in problems:
            print(f"problem: {problem}")
        return 1 if problems else 0
    report = measure(args)
    print(table(report))
    print(f"figures: {args.out}")
    return 1 if any("error" in part for part in report["parts"].values()) else 0


if __name__ == "__main__":
    sys.exit(main())
