"""Preference recovery on the built-in world: the local 0.5B model against the world's truth.

    .venv/bin/python benchmarks/preference_recovery.py --users 20 --out /tmp/recovery.json

Generates the world (default WorldConfig), samples --users users (seeded), and runs the
approximation job's generation loop (prompts, JSON schema, retries, shards) with the local
engine (default: the Qwen2.5-Coder-0.5B-Instruct Q4_K_M GGUF through llama.cpp) on each
sampled user's latest key t = n_u - 1, whose prompt shows the same five reviews the truth
is read from. Then prints precision and recall (steerrec.preferences.recovery) at each
--thresholds value for: the truth itself (the 100% reference), the local model, and a
floor (every key given another sampled user's true statements).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from steerrec.cluster import init_ray
from steerrec.data import schema
from steerrec.data.io import read_table
from steerrec.data.prepare import PrepareConfig, prepare
from steerrec.llm import EngineConfig, LocalSection, build_engine
from steerrec.logging_utils import setup_logging
from steerrec.preferences.approximate import build_requests, read_preferences
from steerrec.preferences.generate import GenerationConfig, generate
from steerrec.preferences.prompts import PREFERENCES_SCHEMA, PromptConfig
from steerrec.preferences.recovery import recovery_with_models
from steerrec.preferences.validate import parse_statements


def sample_requests(data: str, users: int, seed: int) -> list[dict]:
    """The latest request (largest t) of `users` users drawn without replacement."""
    latest: dict[str, dict] = {}
    for request in build_requests(data, PromptConfig()):
        latest[request["user_id"]] = request  # requests come in user then t order
    ids = sorted(latest)
    if users > len(ids):
        raise ValueError(f"--users {users} exceeds the world's {len(ids)} users")
    chosen = sorted(np.random.default_rng(seed).choice(ids, size=users, replace=False))
    return [latest[u] for u in chosen]


def run_local(requests: list[dict], out: str, model: str, threads: int, batch: int, max_tokens: int) -> dict:
    """The job's generation loop (generate) with the local engine; returns its stats."""
    engine = EngineConfig(engine="local", model=model, local=LocalSection(num_threads=threads, batch_size=batch))

    def to_row(key: dict, values: list[str]) -> dict:
        return {**key, "preferences": values, "engine": "local", "model": model, "variant": "default"}

    return generate(
        requests,
        ["user_id", "t"],
        build_engine(engine),
        parse_statements,
        to_row,
        out,
        schema.PREFERENCES,
        schema.PREFERENCE_FAILURES,
        GenerationConfig(max_tokens=max_tokens),
        PREFERENCES_SCHEMA,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0, help="seed of the user sample")
    parser.add_argument(
        "--model", default="default", help="local model: 'default' (Qwen 0.5B GGUF), a .gguf or HF folder"
    )
    parser.add_argument("--thresholds", type=float, nargs="+", default=[0.6, 0.7, 0.8])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--work", help="folder for the world and the preferences (default: a temporary one)")
    parser.add_argument("--out", help="write the figures as JSON to this file")
    parser.add_argument("--examples", type=int, default=3, help="keys to print side by side")
    args = parser.parse_args()
    setup_logging("WARNING")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray

    work = Path(args.work or tempfile.mkdtemp(prefix="steerrec-recovery-"))
    data, prefs = str(work / "world"), str(work / "preferences")
    prepare(PrepareConfig(format="world", out=data))
    requests = sample_requests(data, args.users, args.seed)
    keys = [(r["user_id"], r["t"]) for r in requests]
    init_ray(num_cpus=args.threads, include_dashboard=False, configure_logging=False)
    stats = run_local(requests, prefs, args.model, args.threads, args.batch_size, args.max_tokens)
    ray.shutdown()

    truth = read_table(f"{data}/{schema.TRUTH_FILE}").to_pandas()
    on_keys = pd.DataFrame(keys, columns=["user_id", "t"]).merge(truth, on=["user_id", "t"])
    floor = on_keys[["user_id", "t"]].assign(preferences=np.roll(on_keys.preferences.to_numpy(), 1))
    generated = read_preferences(prefs)
    sources = [
        ("truth (reference)", on_keys, None),
        (f"local 0.5B ({args.model})", generated, stats["seconds"]),
        ("another user's truth (floor)", floor, None),
    ]
    rows = []
    for threshold in args.thresholds:
        for name, table, seconds in sources:
            r = recovery_with_models(table, truth, threshold=threshold, keys=keys)
            rows.append({"source": name, "gen_seconds": seconds, **r.summary()})

    print(
        f"world (default config), {len(keys)} users sampled (seed {args.seed}), latest t each; "
        f"local engine: {stats['written']} written, {stats['failed']} failed, {stats['attempts']} attempts, "
        f"{stats['tokens_out']} tokens out in {stats['seconds']:.0f} s; MiniLM cosine, rule polarity"
    )
    print(f"{'source':<34}{'keys':>6}{'gen':>6}{'true':>6}{'precision':>11}{'recall':>8}{'threshold':>11}{'wall s':>9}")
    for r in rows:
        wall = "-" if r["gen_seconds"] is None else f"{r['gen_seconds']:.0f}"
        print(
            f"{r['source']:<34}{r['keys']:>6}{r['generated']:>6}{r['true']:>6}{r['precision']:>11.3f}"
            f"{r['recall']:>8.3f}{r['threshold']:>11.2f}{wall:>9}"
        )
    by_key = generated.to_pandas().set_index(["user_id", "t"]).preferences
    for user_id, t, true_prefs in on_keys[["user_id", "t", "preferences"]].head(args.examples).itertuples(index=False):
        print(f"\n{user_id} t={t}\n  truth:     {list(true_prefs)}\n  generated: {list(by_key.get((user_id, t), []))}")
    if args.out:
        Path(args.out).write_text(
            json.dumps(
                {"users": args.users, "seed": args.seed, "model": args.model, "generation": stats, "rows": rows},
                indent=2,
                default=str,
            )
        )


if __name__ == "__main__":
    main()
