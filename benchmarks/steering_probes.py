"""Does steering obey? Avoid, attribute and like probes on the built-in world, before and after.

    .venv/bin/python benchmarks/steering_probes.py --run outputs/demo/runs/mender_tok-s0
    .venv/bin/python benchmarks/steering_probes.py --run outputs/demo/runs/tiger-s0 --sweep --out /tmp/probes

The world knows every item's category and attributes (items.parquet `extra`), so the truth
is known. For each of --users users (the first in id order):
- avoid: the dominant category of the user's unsteered top-10 is asked to be avoided in
  each of AVOID phrasings; a probe passes when at most one of the steered top-10 is in it;
- attribute: the most common value of one attribute among those items ("black running
  shoes") is asked to be avoided; passes when at most one steered item has that category
  and value (and `kept` counts how many of the category's other items stay);
- like: a category the user never bought is asked for in each of LIKE phrasings; passes
  when at least half of the top-10 is in it.
"before" is the recommender with steering off (preferences reach the model only), "after"
with the steering config given (default SteeringConfig, or each point of --sweep). The
latency rows time `Recommender.recommend` on one steered request, single-threaded, with
steering off and on: the difference of the p50s is what steering adds per request.
Phrasings marked * are templates the polarity classifier was fitted on; the rest it never saw.
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import time
from collections import Counter
from pathlib import Path

import numpy as np

from steerrec.data import io, schema
from steerrec.data.world.vocab import CATEGORIES
from steerrec.serving import Recommender, RecommendRequest, load_run
from steerrec.steering import Steerer, SteeringConfig, phrases

AVOID = (
    "Avoid {x}",
    "No more {x} for me",
    "I really don't want any {x}",
    "Please keep {x} away from me",
    "Not a fan of {x}, skip them",
    "Honestly, I've had enough of {x}",
)
LIKE = ("Show me {x}", "I'd love some {x}", "Can you find me {x}")
BY_NAME = {c.name: c for c in CATEGORIES}


def noun(category: str) -> str:
    return BY_NAME[category].path[-1].lower()


def world_truth(data: Path) -> tuple[dict[str, str], dict[str, dict[str, str]]]:
    """item_id -> world category, item_id -> attribute values, from a world dataset folder."""
    items = io.read_table(f"{data}/{schema.ITEMS_FILE}", columns=["item_id", "extra"])
    extra = [json.loads(e or "{}") for e in items.column("extra").to_pylist()]
    if not all("world_category" in e for e in extra):
        raise SystemExit(f"{data}/{schema.ITEMS_FILE}: not the built-in world (no extra.world_category)")
    ids = items.column("item_id").to_pylist()
    return {i: e["world_category"] for i, e in zip(ids, extra)}, {i: e["attributes"] for i, e in zip(ids, extra)}


def _top(rec: Recommender, users: list[str], prefs: list[list[str]], batch: int = 32) -> list[list[str]]:
    requests = [RecommendRequest(user_id=u, preferences=p, k=10) for u, p in zip(users, prefs)]
    out = []
    for i in range(0, len(requests), batch):
        out += [[x.item_id for x in r.items] for r in rec.recommend(requests[i : i + batch])]
    return out


def probes(rec: Recommender, users: list[str], cat: dict, attrs: dict) -> dict[str, list]:
    """(users, preferences, check) triples of every probe, built from the unsteered lists."""
    base = _top(rec, users, [[] for _ in users])
    out: dict[str, list] = {"avoid": [], "attribute": [], "like": []}
    for user, top in zip(users, base):
        counts = Counter(cat[i] for i in top)
        dominant = counts.most_common(1)[0][0]
        for phrasing in AVOID:
            out["avoid"].append((user, phrasing, phrasing.format(x=noun(dominant)), dominant, None))
        category = BY_NAME[dominant]
        attribute = category.attributes[len(out["attribute"]) % len(category.attributes)]
        values = Counter(attrs[i][attribute.name] for i in top if cat[i] == dominant)
        value = values.most_common(1)[0][0]
        statement = f"Avoid {attribute.statement_of(value)}"
        out["attribute"].append((user, "Avoid <attribute>", statement, dominant, (attribute.name, value)))
        bought = {cat[i.item_id] for i in rec.user_history(user).history}
        never = [c.name for c in CATEGORIES if c.name not in bought]
        if never:
            target = never[len(out["like"]) % len(never)]
            for phrasing in LIKE:
                out["like"].append((user, phrasing, phrasing.format(x=noun(target)), target, None))
    return out


def run_probes(rec: Recommender, built: dict[str, list], cat: dict, attrs: dict) -> dict[str, dict]:
    """Pass rates per kind and per phrasing."""
    result = {}
    for kind, rows in built.items():
        tops = _top(rec, [r[0] for r in rows], [[r[2]] for r in rows])
        passed, kept = [], []
        for (_, _, _, category, attribute), top in zip(rows, tops):
            in_cat = [i for i in top if cat[i] == category]
            if kind == "avoid":
                passed.append(len(in_cat) <= 1)
            elif kind == "like":
                passed.append(len(in_cat) >= 5)
            else:
                name, value = attribute
                passed.append(sum(attrs[i][name] == value for i in in_cat) <= 1)
                kept.append(sum(attrs[i][name] != value for i in in_cat))
        by_phrasing: dict[str, list[bool]] = {}
        for row, ok in zip(rows, passed):
            by_phrasing.setdefault(row[1], []).append(ok)
        result[kind] = {
            "probes": len(rows),
            "pass_rate": float(np.mean(passed)) if passed else float("nan"),
            "by_phrasing": {p: float(np.mean(v)) for p, v in by_phrasing.items()},
        } | ({"kept_other_values": float(np.mean(kept))} if kept else {})
    return result


def latency_ms(rec: Recommender, users: list[str], seconds: float = 5.0) -> float:
    """p50 ms of one steered request (the avoid phrasings cycle over the users), single-threaded."""
    import torch

    torch.set_num_threads(1)
    requests = [
        RecommendRequest(user_id=u, preferences=[AVOID[i % len(AVOID)].format(x="headphones")], k=10)
        for i, u in enumerate(users)
    ]
    rec.recommend(requests[:2])
    times, end, i = [], time.perf_counter() + seconds, 0
    while time.perf_counter() < end:
        start = time.perf_counter()
        rec.recommend([requests[i % len(requests)]])
        times.append((time.perf_counter() - start) * 1000)
        i += 1
    return statistics.median(times)


def _row(name: str, res: dict) -> str:
    cells = [f"{res[k]['pass_rate']:.3f}" for k in ("avoid", "attribute", "like")]
    return f"| {name} | " + " | ".join(cells) + f" | {res['attribute'].get('kept_other_values', 0):.2f} |"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--run", required=True, help="a mender_tok or tiger run folder trained on the world")
    ap.add_argument("--data", default="", help="the world dataset folder (default: the run's job.yaml data)")
    ap.add_argument("--users", type=int, default=150)
    ap.add_argument("--sweep", action="store_true", help="also sweep match, similarity floors and like_weight")
    ap.add_argument("--latency-seconds", type=float, default=5.0)
    ap.add_argument("--out", default="", help="folder for probes.json")
    args = ap.parse_args()

    run = load_run(args.run)
    from steerrec.serving.service import trained_data_folder

    data = Path(args.data) if args.data else trained_data_folder(Path(args.run))
    if data is None:
        raise SystemExit(f"{args.run}: name the world dataset folder with --data")
    cat, attrs = world_truth(data)
    off = Recommender(run, steering=SteeringConfig(enabled=False))
    users = off.users(limit=args.users)
    built = probes(off, users, cat, attrs)
    trained = set(phrases.TRAIN_AVOID) | set(phrases.TRAIN_LIKE)
    print(f"{run.model_name}: {len(users)} users; " + ", ".join(f"{k} {len(v)} probes" for k, v in built.items()))
    print("phrasings (* seen when the polarity classifier was fitted):")
    print("  " + "; ".join(p + ("*" if p in trained else "") for p in AVOID + LIKE))
    results = {"before (steering off)": run_probes(off, built, cat, attrs)}
    configs = {"after (default)": SteeringConfig()}
    if args.sweep:
        grid = itertools.product(("threshold", "otsu"), (0.15, 0.2, 0.3), (0.0, 1.0, 2.0, 4.0))
        for match, floor, like in grid:
            configs[f"{match} floor={floor} like_weight={like}"] = SteeringConfig(
                match=match, avoid_similarity=floor, like_similarity=floor, like_weight=like
            )
    polarity = None
    for name, cfg in configs.items():
        steerer = Steerer(run.texts or run.item_ids, cfg, polarity=polarity)  # one classifier fit for all
        polarity = steerer.polarity
        rec = Recommender(run, steerer=steerer)
        results[name] = run_probes(rec, built, cat, attrs)
        print(_row(name, results[name]), flush=True)
    print("\n| steering | avoid pass | attribute pass | like pass | attribute: other values kept (of 10) |")
    print("|---|---|---|---|---|")
    for name, res in results.items():
        print(_row(name, res))
    for name in ("before (steering off)", "after (default)"):
        print(f"{name}: avoid by phrasing {results[name]['avoid']['by_phrasing']}")
        print(f"{name}: like by phrasing {results[name]['like']['by_phrasing']}")
    on = Recommender(run, steering=SteeringConfig())
    p50_off, p50_on = latency_ms(off, users, args.latency_seconds), latency_ms(on, users, args.latency_seconds)
    print(f"\nlatency p50, one request, 1 thread: steering off {p50_off:.2f} ms, on {p50_on:.2f} ms, ", end="")
    print(f"added {p50_on - p50_off:.2f} ms (statement readings cached after first use)")
    cold = []
    for n in range(40):  # a statement never seen: embed it, classify it, match the catalog
        start = time.perf_counter()
        on.steerer.read([f"Please avoid anything like item number {n} in red"])
        cold.append((time.perf_counter() - start) * 1000)
    cold_p50 = statistics.median(cold)
    print(f"reading a new statement (embed + classify + match {on.n_items} items): p50 {cold_p50:.2f} ms")
    if args.out:
        Path(args.out).mkdir(parents=True, exist_ok=True)
        latency = {"p50_off_ms": p50_off, "p50_on_ms": p50_on, "new_statement_p50_ms": cold_p50}
        summary = {"run": args.run, "users": len(users), "results": results, "latency": latency}
        (Path(args.out) / "probes.json").write_text(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
