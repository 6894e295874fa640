"""Evaluate an aligned recommender by greedy generation (RecPO Sec. 5).

- HR@1: the generated title matches exactly one candidate and it is the target;
  ValidRatio: the generated title is one of the candidates.
- Probes, built at each user's valid position (never a training target) with the test
  item as a "future" candidate: adherence (the future item is rated >= 4 too: does the
  model still pick the next item?), avoidance (the future item is rated <= 2: does the
  model avoid it?), least-preferred (asked for the candidate the user would like least,
  does it name the low-rated future item? sampled candidates count as neutral, rating 3).
- HR@1 by the user's history length at the test position (buckets).
`results_table` and `plot` (matplotlib) show several runs side by side.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from steerrec.alignment.data import ANSWER_PREFIX, AlignmentDataConfig, Example
from steerrec.alignment.losses import UNRATED_RATING, UNRATED_STEPS_AHEAD, preference_score

logger = logging.getLogger(__name__)

HISTORY_BUCKETS = (50, 100, 200)  # upper edges; the last bucket is open
LEAST_QUESTION = "which one of these candidates would the user like least? Candidates:"
LOW_RATING = 2.0


def hit_metrics(answers: Sequence[str], examples: Sequence[Example]) -> dict[str, float]:
    """HR@1 and ValidRatio of generated titles against each example's candidates."""
    hits = valid = 0
    for answer, ex in zip(answers, examples, strict=True):
        matches = [k for k, c in enumerate(ex.candidates) if c.strip() == answer.strip()]
        valid += bool(matches)
        hits += matches == [ex.target]
    n = max(len(examples), 1)
    return {"hr1": hits / n, "valid_ratio": valid / n, "n": len(examples)}


def score(
    model, tokenizer, examples: Sequence[Example], max_new_tokens: int = 32, batch_size: int = 16
) -> dict[str, float]:
    """Greedy answers to each example's prompt, scored by `hit_metrics`."""
    from steerrec.alignment.model import generate_titles

    answers = generate_titles(model, tokenizer, [e.prompt() for e in examples], max_new_tokens, batch_size)
    return hit_metrics(answers, examples)


def build_probes(
    interactions, items, cfg: AlignmentDataConfig, users: set[str] | None = None
) -> dict[str, list[Example]]:
    """Adherence, avoidance and least-preferred probes (module docstring), one per user at most."""
    rng = np.random.default_rng([cfg.seed, 7])
    titles = {r.item_id: (r.title or r.item_id) for r in items.itertuples()}
    catalog = np.array(sorted(titles))
    probes: dict[str, list[Example]] = {"adherence": [], "avoidance": [], "least_preferred": []}
    for user_id, group in interactions.groupby("user_id", sort=True):
        if users is not None and str(user_id) not in users:
            continue
        ids, ratings = group["item_id"].tolist(), group["rating"].astype(float).tolist()
        if len(ids) < 3 or np.isnan(ratings[-2]) or np.isnan(ratings[-1]) or ratings[-2] < cfg.min_rating:
            continue
        ex = _probe(str(user_id), ids, ratings, titles, catalog, cfg, rng)
        if ex is None:
            continue
        if ratings[-1] >= cfg.min_rating:
            probes["adherence"].append(ex)
        elif ratings[-1] <= LOW_RATING:
            probes["avoidance"].append(ex)
            probes["least_preferred"].append(ex)
    return probes


def _probe(user_id, ids, ratings, titles, catalog, cfg, rng) -> Example | None:
    """Next item = the valid target (index n-2), future item = the test item, + unseen items."""
    i, seen = len(ids) - 2, set(ids)
    pool = [c for c in rng.permutation(catalog)[: 4 * cfg.n_candidates] if c not in seen]
    if len(pool) < cfg.n_candidates - 2:
        return None
    cand = [ids[i], ids[i + 1]] + pool[: cfg.n_candidates - 2]
    rated = [ratings[i], ratings[i + 1]] + [UNRATED_RATING] * (len(cand) - 2)
    steps = [0, 1] + [UNRATED_STEPS_AHEAD] * (len(cand) - 2)
    order = rng.permutation(len(cand))
    history = [(titles.get(ids[j], ids[j]), ratings[j]) for j in range(max(0, i - cfg.max_history), i)]
    ex = Example(
        user_id=user_id,
        t=i + 1,
        split="probe",
        history=history,
        candidates=[titles.get(cand[k], cand[k]) for k in order],
        candidate_ids=[cand[k] for k in order],
        ratings=[rated[k] for k in order],
        steps_ahead=[steps[k] for k in order],
        target=int(np.where(order == 0)[0][0]),
        template=int(rng.integers(4)),
    )
    ex.scores = [float(preference_score(r, s, cfg.decay)) for r, s in zip(ex.ratings, ex.steps_ahead)]
    return ex


def _least_prompt(ex: Example) -> str:
    """The example's prompt with the question turned around: the least preferred candidate."""
    head = ex.prompt().split("\n", 1)[0]
    lines = [f"{t} | Rating: {r:g}" if r is not None else t for t, r in ex.history]
    return f"{head}\n" + "\n".join(lines) + f"\n{LEAST_QUESTION}\n" + "\n".join(ex.candidates) + f"\n{ANSWER_PREFIX}"


def run_probes(model, tokenizer, probes: dict[str, list[Example]], max_new_tokens: int = 32) -> dict[str, float]:
    """Adherence, avoidance and least-preferred rates (NaN where a probe has no example)."""
    from steerrec.alignment.model import generate_titles

    out: dict[str, float] = {}
    for name, examples in probes.items():
        prompts = [_least_prompt(e) if name == "least_preferred" else e.prompt() for e in examples]
        answers = generate_titles(model, tokenizer, prompts, max_new_tokens) if examples else []
        future = [e.candidates[e.steps_ahead.index(1)] for e in examples]
        if name == "adherence":
            rate = [a == e.candidates[e.target] for a, e in zip(answers, examples)]
        elif name == "avoidance":
            rate = [a != f for a, f in zip(answers, future)]
        else:
            rate = [a == f for a, f in zip(answers, future)]
        out[name] = float(np.mean(rate)) if rate else float("nan")
        out[f"{name}_n"] = len(examples)
    return out


def hr1_by_history(
    answers: Sequence[str], examples: Sequence[Example], edges: Sequence[int] = HISTORY_BUCKETS
) -> dict[str, float]:
    """HR@1 per bucket of the user's history length (t - 1 items before the target)."""
    out: dict[str, float] = {}
    lows = [0, *edges]
    for k, low in enumerate(lows):
        high = edges[k] if k < len(edges) else None
        name = f"hist_{low + 1}-{high}" if high else f"hist_{low + 1}+"
        pick = [j for j, e in enumerate(examples) if e.t - 1 > low and (high is None or e.t - 1 <= high)]
        if pick:
            out[name] = hit_metrics([answers[j] for j in pick], [examples[j] for j in pick])["hr1"]
            out[f"{name}_n"] = len(pick)
    return out


def evaluate(
    model, tokenizer, test: Sequence[Example], probes: dict[str, list[Example]], max_new_tokens: int = 32
) -> dict[str, Any]:
    """HR@1, ValidRatio, HR@1 by history length and the probes for one model."""
    from steerrec.alignment.model import generate_titles

    model.eval()
    answers = generate_titles(model, tokenizer, [e.prompt() for e in test], max_new_tokens)
    result: dict[str, Any] = hit_metrics(answers, test)
    result.update(hr1_by_history(answers, test))
    result.update(run_probes(model, tokenizer, probes, max_new_tokens))
    return result


def eval_examples(cfg, n_users: int = 200, seed: int = 0) -> tuple[list[Example], dict[str, list[Example]]]:
    """(test examples, probes) of `cfg`'s data for up to `n_users` sampled users each."""
    from steerrec.alignment import examples
    from steerrec.data import io, schema

    test = examples.load_examples(cfg)["test"]
    if n_users and len(test) > n_users:
        test = [test[i] for i in sorted(np.random.default_rng(seed).choice(len(test), n_users, replace=False))]
    inter = io.read_table(f"{cfg.data}/{schema.INTERACTIONS_FILE}", ["user_id", "item_id", "rating"]).to_pandas()
    items = io.read_table(f"{cfg.data}/{schema.ITEMS_FILE}", ["item_id", "title"]).to_pandas()
    users = sorted(inter["user_id"].unique())  # probes: any user (test users rated their last item >= 4)
    if n_users and len(users) > n_users:
        users = [users[i] for i in np.random.default_rng(seed).choice(len(users), n_users, replace=False)]
    return test, build_probes(inter, items, cfg.examples, set(users))


def evaluate_run(run: str | Path, n_users: int = 200, seed: int = 0) -> dict[str, Any]:
    """Evaluate a finished run folder on the test examples of up to `n_users` sampled users,
    probes on up to `n_users` sampled users, of the data it was trained on; writes
    results.json into the run folder."""
    from steerrec.alignment import runs
    from steerrec.alignment.config import AlignConfig
    from steerrec.config import load
    from steerrec.run_folder import CONFIG_FILE, RESULTS_FILE, require_file, write_json

    cfg = load(AlignConfig, require_file(run, CONFIG_FILE))
    test, probes = eval_examples(cfg, n_users, seed)
    model, tokenizer = runs.load_run(run)
    result = evaluate(model, tokenizer, test, probes, cfg.max_new_tokens)
    write_json(Path(run) / RESULTS_FILE, result)
    return result


COLUMNS = ("hr1", "valid_ratio", "adherence", "avoidance", "least_preferred")


def results_table(rows: dict[str, dict[str, Any]], columns: Sequence[str] = COLUMNS) -> str:
    """A markdown table: one row per run, the given metric columns."""
    lines = ["| run | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for name, r in rows.items():
        cells = [f"{r[c]:.4f}" if isinstance(r.get(c), float) else str(r.get(c, "")) for c in columns]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(rows: dict[str, dict[str, Any]], path: str | Path, columns: Sequence[str] = COLUMNS) -> Path:
    """Grouped bars of `columns` per run, saved as a PNG at `path`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(1.6 * len(columns) + 2, 4))
    width = 0.8 / max(len(rows), 1)
    for k, (name, r) in enumerate(rows.items()):
        values = [float(r.get(c, float("nan"))) for c in columns]
        ax.bar(np.arange(len(columns)) + k * width, values, width, label=name)
    ax.set_xticks(np.arange(len(columns)) + 0.4 - width / 2, columns)
    ax.set_ylim(0, 1)
    ax.legend(fontsize="small")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
