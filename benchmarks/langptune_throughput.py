"""LangPTune throughput: rollout profiles/s (batched, the local engine's transformers backend
on the in-memory policy) against a plain one-prompt-at-a-time transformers `generate` loop
of the same model, and RLSO policy-update examples/s through the training loop.

    PYTHONPATH=platform python benchmarks/langptune_throughput.py --data /abs/data/magazine \
        --model tiny --sessions 8 --length 64

Every profile is forced to exactly --length tokens (min_new_tokens) in both generation
routes, so both do the same work. `--model gguf` uses Qwen2.5-Coder-0.5B-Instruct (the
GGUF dequantized once into the cache; slow on CPU). Prints one markdown table.
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
        mcfg = M.ModelConfig(source="gguf")
        base, tok = M.load_pretrained(mcfg)
    policy = M.add_lora(base, mcfg)
    policy.generation_config.min_new_tokens = args.length
    ensure_chat_template(tok)
    rows = profile_requests(sessions, messages, RolloutConfig(profile_length=args.length), 0, seeded=False)

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
    print(f"model {args.model}, {len(sessions)} sessions x 2 profiles x {args.length} tokens, {args.threads} threads")
    print("| route | profiles/s | tokens/s | seconds |\n|---|---|---|---|")
    print(f"| rollout (batched backend) | {n / t_batched:.2f} | {tokens / t_batched:.1f} | {t_batched:.1f} |")
    print(f"| plain generate loop | {n / t_plain:.2f} | {n * args.length / t_plain:.1f} | {t_plain:.1f} |")
    print(f"| rollout inside the policy phase | {row['rollout_profiles_per_s']:.2f} | | {row['rollout_seconds']:.1f} |")
    print(f"| RLSO update (sessions/s) | {row['examples_per_s']:.2f} | | {row['train_seconds']:.1f} |")


if __name__ == "__main__":
    main()
