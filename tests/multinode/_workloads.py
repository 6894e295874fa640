"""Small inputs for the multi-node tests: a tiny world with a recommendation benchmark and
unique semantic IDs (no embedder, no RQ-VAE), a MovieLens-shaped folder for alignment, and
the state-API counts that show where work ran."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

TIGER = dict(num_layers=1, num_decoder_layers=1, d_model=32, d_ff=64, num_heads=2, d_kv=16, max_history=8, dropout=0.0)


def tiny_world(root: Path, n_train: int) -> Path:
    """world data + bench/axes/recommendation/{train,valid} (the first `n_train` train rows)
    + semantic_ids.parquet (codes [i // 8, i % 8, 0], unique)."""
    from steerrec.benchmark.axes import RECOMMENDATION, axis_file, axis_schema
    from steerrec.data.prepare import PrepareConfig, prepare
    from steerrec.data.schema import SEMANTIC_IDS

    prepare(PrepareConfig(format="world", out=str(root / "data"), world={"n_users": 60, "n_items": 40}))
    seq = pq.read_table(root / "data" / "sequences.parquet").to_pylist()
    for split, limit in (("train", n_train), ("valid", None)):
        rows = [
            {k: r[k] for k in ("user_id", "t", "history", "target")} | {"preference": "anything"}
            for r in seq
            if r["split"] == split
        ][:limit]
        path = root / "bench" / axis_file(RECOMMENDATION, split)
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.Table.from_pylist(rows, schema=axis_schema(RECOMMENDATION)), path)
    (root / "bench" / "manifest.json").write_text('{"counts": {}}')
    items = pq.read_table(root / "data" / "items.parquet").column("item_id").to_pylist()
    codes = [[i // 8, i % 8, 0] for i in range(len(items))]
    pq.write_table(pa.table({"item_id": items, "codes": codes}, schema=SEMANTIC_IDS), root / "semantic_ids.parquet")
    return root


def per_node(lc, kind: str, name: str = "", seen: set[str] = frozenset()) -> tuple[Counter, set[str]]:
    """How many tasks (kind="task": normal and actor tasks) or actors (kind="actor", by class
    name) whose name contains `name` ran on each worker node, from Ray's state API, leaving out the ids in `seen` (an
    earlier job's). Returns (Counter by node name, every id seen so far)."""
    from ray.util.state import list_actors, list_tasks

    listing = list_tasks if kind == "task" else list_actors
    rows = listing(address=lc.dashboard_url, limit=10_000, raise_on_missing_output=False)
    ids = {(r.task_id if kind == "task" else r.actor_id): r for r in rows}
    key = (lambda r: r.name) if kind == "task" else (lambda r: r.class_name)
    new = [r for i, r in ids.items() if i not in seen and name in (key(r) or "")]
    # creation tasks are listed at the owner's node; a task never scheduled has no node
    new = [r for r in new if getattr(r, "type", "") != "ACTOR_CREATION_TASK" and r.node_id]
    return Counter(lc.name_of(r.node_id) or "head" for r in new), set(ids) | set(seen)


def settled_per_node(lc, kind: str, name: str, seen: set[str], at_least: int, timeout: float = 15.0):
    """`per_node`, polled until it counts `at_least` (workers send their task events to the GCS
    about once a second, so a node's last tasks can be missing just after a job ends)."""
    deadline = time.monotonic() + timeout
    while True:
        counts, ids = per_node(lc, kind, name, seen)
        if sum(counts.values()) >= at_least or time.monotonic() > deadline:
            return counts, ids
        time.sleep(0.5)


def kill_when(lc, node: str, ready, timeout: float = 300.0) -> dict:
    """Kill worker node `node` from a thread as soon as `ready()` is true; the returned dict
    gets "killed_after_s" (None when it never became ready) once its "thread" is joined."""
    state: dict = {"killed_after_s": None}

    def watch() -> None:
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            if ready():
                lc.kill(node)
                state["killed_after_s"] = time.monotonic() - start
                return
            time.sleep(0.05)

    state["thread"] = threading.Thread(target=watch, daemon=True)
    state["thread"].start()
    return state


def committed_checkpoints(run: Path) -> int:
    """Checkpoints Ray Train's controller has registered for the run folder `run` (a checkpoint
    folder appears when a worker reports it; the controller takes it up at its next poll, ~2 s
    later, and a failure before then resumes from the one before)."""
    try:
        return len(json.loads((run / "checkpoint_manager_snapshot.json").read_text())["checkpoint_results"])
    except (FileNotFoundError, json.JSONDecodeError, KeyError):
        return 0


def load_weights(path: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(path))


def review_data(root: Path, n_users: int, n_items: int) -> str:
    """items.parquet + interactions.parquet: every user reviews every item in order."""
    from steerrec.data import schema

    items = [
        {"item_id": f"i{k}", "title": f"Widget{k} deluxe", "brand": "Acme", "categories": ["tools"]}
        | {"price": 9.5, "description": "A widget.", "extra": "{}"}
        for k in range(n_items)
    ]
    inter = [
        {"user_id": f"u{u:02d}", "item_id": f"i{k}", "timestamp": 100 + k, "rating": 4.0}
        | {"review_text": f"Review {k} by u{u:02d}", "review_summary": "fine"}
        for u in range(n_users)
        for k in range(n_items)
    ]
    root.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(items, schema=schema.ITEMS), root / schema.ITEMS_FILE)
    pq.write_table(pa.Table.from_pylist(inter, schema=schema.INTERACTIONS), root / schema.INTERACTIONS_FILE)
    return str(root)


def digest_reply(body: dict) -> str:
    """Preferences that are a function of the prompt alone (so any node, any retry, gives the same)."""
    digest = hashlib.sha256(body["messages"][-1]["content"].encode()).hexdigest()
    return json.dumps({"preferences": [f"Look for items like {digest[:8]}", f"Avoid {digest[8:14]}"]})


def chat_server(delay: float):
    """A loopback chat endpoint (every simulated node reaches the driver's loopback); yields
    the endpoint (its `url`, the `requests` it answered)."""
    from steerrec.llm.scripted_endpoint import scripted_chat_endpoint

    return scripted_chat_endpoint(digest_reply, latency=delay)


class Load:
    """`clients` threads POSTing `body` to `url` back to back until stopped (a bounded load:
    at most `clients` requests in flight); each request is kept as (start, end, ok)."""

    def __init__(self, url: str, body: dict, clients: int = 4, timeout: float = 10.0) -> None:
        self.url, self.body, self.clients, self.timeout = url, body, clients, timeout
        self.results: list[tuple[float, float, bool]] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._client, daemon=True) for _ in range(clients)]

    def _client(self) -> None:
        import requests

        with requests.Session() as session:
            while not self._stop.is_set():
                start = time.monotonic()
                try:
                    ok = session.post(self.url, json=self.body, timeout=self.timeout).status_code == 200
                except requests.RequestException:
                    ok = False
                self.results.append((start, time.monotonic(), ok))

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()

    def failover(self, killed_at: float) -> dict:
        """Requests that failed, and seconds from the kill to the end of the last failed request
        (0 when none failed), with the counts before and after."""
        failed = [r for r in self.results if not r[2]]
        recovered = max((end for _, end, _ in failed), default=killed_at)
        return {
            "requests": len(self.results),
            "before_kill": sum(1 for s, _, _ in self.results if s < killed_at),
            "failed": len(failed),
            "failed_before_kill": sum(1 for s, _, _ in failed if s < killed_at),
            "recovery_s": round(recovered - killed_at, 2),
            "ok_after_recovery": sum(1 for s, _, ok in self.results if s > recovered and ok),
            "failed_after_recovery": sum(1 for s, _, ok in self.results if s > recovered and not ok),
        }


def record(name: str, **figures) -> None:
    """Append one line of measured figures to $STEERREC_FIGURES (JSON lines) when it is set."""
    import os

    path = os.environ.get("STEERREC_FIGURES")
    if path:
        with open(path, "a") as handle:
            handle.write(json.dumps({"what": name, **figures}) + "\n")
