"""LangPTune throughput: rollout profiles/s (batched, the local engine's transformers backend
on the in-memory policy) against a plain one-prompt-at-a-time transformers `generate` loop
of the same model, RLSO policy-update examples/s through the training loop, and with `--ray`
the Ray program's generator group (steerrec.langptune.ray_program; profiles/s with 1 and 2
generator actors on the same rows) and its adapter hand-over (median seconds of 3, bytes).

    PYTHONPATH=platform python benchmarks/langptune_throughput.py --data /abs/data/magazine \
        --model tiny --sessions 8 --length 64 --ray

Every profile is forced to exactly --length tokens (min_new_tokens) in both generation
routes, so both do the same work. `--model gguf` uses Qwen2.5-Coder-0.5B-Instruct (the
GGUF dequantized once into the cache; slow on CPU; `--dtype bfloat16` as the LangPTune
runs). Prints one markdown table. The Ray rows start a local Ray with max(2, --threads)
CPUs; each generator actor has 1 CPU and --actor-threads torch threads, and generates 2
rows once (warm-up) before the timed calls (the median of --repeats); the hand-over is
driven from this process (the trainer actor's role).
"""

from __future__ import annotations

import argparse
import time

import torch

from steerrec.alignment import model as M
from steerrec.embed import EmbedderConfig
from steerrec.langptune.config import PolicyPhaseConfig
from steerrec.langptune.embedder import Catalog, embed_frozen, load_trainable
from steerrec.langptune.policy_task import PolicyTask
from steerrec.langptune.reward import RewardConfig
from steerrec.langptune.rollouts import RolloutConfig, ensure_chat_template, generate_in_process, profile_requests
from steerrec.langptune.sessions import SessionConfig, load_sessions, profile_messages
from steerrec.train.loop import LoopConfig, fit_local


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True)
    p.add_argument("--model", choices=("tiny", "gguf"), default="tiny")
    p.add_argument("--sessions", type=int, default=8)
    p.add_argument("--length", type=int, default=64)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--dtype", default="float32", help="the policy's dtype (policy.model.dtype; bfloat16 as the runs)")
    p.add_argument("--ray", action="store_true", help="add the Ray program's generator and hand-over rows")
    p.add_argument("--actor-threads", type=int, default=1, help="torch threads per generator actor")
    p.add_argument("--repeats", type=int, default=3, help="timed generator-group calls (median)")
    p.add_argument("--actors", default="1,2", help="generator-group sizes to time, comma-separated")
    p.add_argument("--ray-only", action="store_true", help="only the Ray rows (each actor holds a copy of the model)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    scfg = SessionConfig(splits=("train",))
    sessions, items = load_sessions(args.data, scfg)
    sessions = sessions[: args.sessions]
    catalog = Catalog.from_items(items)

    def messages(s):
        return profile_messages(s, catalog.text_of, scfg)

    if args.model == "tiny":
        mcfg = M.ModelConfig(hidden_size=64, num_layers=2, num_heads=4, intermediate_size=128)
        tok = M.build_tokenizer([m["content"] for s in sessions for m in messages(s)], mcfg.vocab_size)
        base = M.build_tiny(mcfg, tok, 0)
    else:
        mcfg = M.ModelConfig(source="gguf", dtype=args.dtype)
        base, tok = M.load_pretrained(mcfg)
    policy = M.add_lora(base, mcfg)
    policy.generation_config.min_new_tokens = args.length
    ensure_chat_template(tok)
    rows = profile_requests(sessions, messages, RolloutConfig(profile_length=args.length), 0, seeded=False)

    lines = [] if args.ray_only else local_rows(args, sessions, catalog, mcfg, tok, policy, rows)
    if args.ray or args.ray_only:
        lines += ray_rows(args, mcfg, tok, policy, rows)
    what = f"{args.model} ({args.dtype})" if args.model == "gguf" else args.model
    print(f"model {what}, {len(sessions)} sessions x 2 profiles x {args.length} tokens, {args.threads} threads")
    print("| route | profiles/s | tokens/s | seconds |\n|---|---|---|---|")
    print("\n".join(lines))


def local_rows(args: argparse.Namespace, sessions, catalog, mcfg: M.ModelConfig, tok, policy, rows) -> list[str]:
    """Table rows: the batched backend, the plain generate loop, and the policy phase through the loop."""
    started = time.perf_counter()
    batched = generate_in_process(policy, tok, rows, seed=0)
    t_batched = time.perf_counter() - started
    started = time.perf_counter()
    for r in rows:  # the plain loop: one prompt per generate call
        text = tok.apply_chat_template(r["messages"], tokenize=False, add_generation_prompt=True)
        enc = tok(text, return_tensors="pt", add_special_tokens=False)
        with torch.no_grad():
            policy.generate(**enc, max_new_tokens=args.length, do_sample=True, top_k=0, pad_token_id=tok.pad_token_id)
    t_plain = time.perf_counter() - started
    tokens = sum(r["num_generated_tokens"] for r in batched)

    embedder = load_trainable(EmbedderConfig())
    vecs = embed_frozen(embedder, catalog.texts)
    cfg = PolicyPhaseConfig(
        model=mcfg,
        rollout=RolloutConfig(profile_length=args.length),
        reward=RewardConfig(),
        sessions_per_iteration=len(sessions),
        minibatch=2,
    )
    task = PolicyTask(
        cfg, {"train": sessions}, catalog, lambda t: embed_frozen(embedder, t), vecs, lambda: (policy, tok)
    )
    loop = LoopConfig(epochs=1, lr=1e-4, monitor="", trainable_only=True, progress=False, num_threads=args.threads)
    row = fit_local(task, loop)[0]["history"][-1]

    n = len(rows)
    return [
        f"| rollout (batched backend) | {n / t_batched:.2f} | {tokens / t_batched:.1f} | {t_batched:.1f} |",
        f"| plain generate loop | {n / t_plain:.2f} | {n * args.length / t_plain:.1f} | {t_plain:.1f} |",
        f"| rollout inside the policy phase | {row['rollout_profiles_per_s']:.2f} | | {row['rollout_seconds']:.1f} |",
        f"| RLSO update (sessions/s) | {row['examples_per_s']:.2f} | | {row['train_seconds']:.1f} |",
    ]


def ray_rows(args: argparse.Namespace, mcfg: M.ModelConfig, tok, policy, rows: list[dict]) -> list[str]:
    """Table rows: the generator group's profiles/s with each --actors size, and the hand-over."""
    import statistics
    import tempfile

    import ray
    from steerrec.config import from_dict
    from steerrec.langptune.ray_program import Generator, GeneratorGroup
    from steerrec.langptune.train import LangPTuneConfig

    length = args.length

    def forced(model) -> None:  # the same forced length in every generator
        model.generation_config.min_new_tokens = length

    out = tempfile.mkdtemp(prefix="lpt_bench_")
    tok.save_pretrained(f"{out}/tokenizer")  # a tiny policy's generators read it (same base weights: seed 0)
    ray.init(address="local", num_cpus=max(2, args.threads), include_dashboard=False, configure_logging=False)
    lines = []
    threads = args.actor_threads
    for n in [int(x) for x in args.actors.split(",")]:
        raw = {"data": "unused", "out": out, "policy": {"model": mcfg.__dict__}, "ray": {"threads": threads}}
        cfg = from_dict(LangPTuneConfig, raw)
        actor = ray.remote(Generator).options(num_cpus=1)
        group = GeneratorGroup([actor.remote(cfg, forced) for _ in range(n)])
        costs = [group.sync(policy) for _ in range(3)]  # the first also builds each generator's policy
        ray.get([h.generate.remote(rows[:2], 0) for h in group.handles])  # warm-up
        times = []
        for _ in range(args.repeats):
            started = time.perf_counter()
            generated = group.generate(rows, 0)
            times.append(time.perf_counter() - started)
        seconds = statistics.median(times)
        tokens = sum(r["num_generated_tokens"] for r in generated)
        lines.append(
            f"| Ray generator group, {n} actor(s) x {threads} thread(s) | {len(rows) / seconds:.2f} "
            f"| {tokens / seconds:.1f} | {seconds:.1f} |"
        )
        mid = {k: statistics.median(c[k] for c in costs) for k in costs[0] if k.endswith("seconds")}
        parts = ", ".join(f"{k.removesuffix('_seconds')} {v:.4f}" for k, v in mid.items() if k != "seconds")
        lines.append(
            f"| adapter hand-over to {n} actor(s): {costs[0]['bytes']:,} bytes ({parts} s) | | | {mid['seconds']:.4f} |"
        )
        for h in group.handles:
            ray.kill(h)
    ray.shutdown()
    return lines


if __name__ == "__main__":
    main()
