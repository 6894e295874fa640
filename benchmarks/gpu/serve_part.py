"""Part 4: Mender-Tok batched, trie-constrained beam search through the serving `Recommender` on one GPU.

The run folder is `steerrec.serving.tiny_run.build_run` at larger sizes (random weights:
a BERT-shaped text encoder of `ServeBudget.hidden` width, a one-layer T5 decoder,
256 x 256 x 256 codebooks, `n_items` items), loaded by `Recommender.from_run(device=...)`,
the class the Serve app wraps. Each call is `Recommender.recommend` on a batch of
requests (stored users, one preference each, k=10); requests/s = batch x calls / seconds
over `ServeBudget.seconds` after three warm-up calls; the latency is per call.
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from pathlib import Path

from benchmarks.gpu.plan import ServeBudget


def run(work: Path, budget: ServeBudget, device: str) -> dict:
    from steerrec.serving import Recommender, RecommendRequest
    from steerrec.serving.tiny_run import build_run
    from steerrec.steering import SteeringConfig

    folder = build_run(
        work / "mender-tok-run",
        n_items=budget.n_items,
        n_users=budget.n_users,
        codebook_sizes=(256, 256, 256),
        hidden=budget.hidden,
        d_model=budget.d_model,
    )
    # steering off: its sentence embedder is not staged on the GPU machine; the beam search is what runs on the GPU
    # (steering's own per-request cost is measured on CPU by benchmarks/steering_probes.py)
    rec = Recommender.from_run(
        folder, beam_size=budget.beam_size, device=device, steering=SteeringConfig(enabled=False)
    )
    prefs = ["avoid bulky headsets", "prefer wireless things"]
    requests = [
        RecommendRequest(user_id=f"u{n % budget.n_users}", preferences=[prefs[n % 2]], k=10)
        for n in range(max(budget.batches))
    ]
    figures = {}
    for size in budget.batches:
        batch = requests[:size]
        for _ in range(3):
            rec.recommend(batch)
        latencies, started = [], time.perf_counter()
        while time.perf_counter() - started < budget.seconds:
            t0 = time.perf_counter()
            out = rec.recommend(batch)
            latencies.append(time.perf_counter() - t0)
        elapsed = time.perf_counter() - started
        if any(not r.items for r in out):
            raise RuntimeError(f"batch {size}: a request came back with no items")
        figures[f"batch_{size}"] = {
            "calls": len(latencies),
            "requests_per_s": size * len(latencies) / elapsed,
            "p50_ms": 1000 * statistics.median(latencies),
            "max_ms": 1000 * max(latencies),
        }
    params = sum(p.numel() for p in rec.run.model.parameters())
    return {"budget": dataclasses.asdict(budget), "device": device, "parameters": params, **figures}
