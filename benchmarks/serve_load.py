"""Loopback load on the Serve app: QPS and latency with batching on and off, and Serve's overhead.

    .venv/bin/python benchmarks/serve_load.py --seconds 10 --clients 1,4,16
    .venv/bin/python benchmarks/serve_load.py --run runs/mender_tok     # a real run folder
    .venv/bin/python benchmarks/serve_load.py --run runs/tiger --ingress haproxy --pin --out /tmp/load

N clients (asyncio + aiohttp, one process on the same machine) each send one POST
/v1/recommend at a time for T seconds, per setting. Batching on: `@serve.batch` groups up
to --max-batch-size requests (waiting --wait-ms for company); off: batches of one, no
wait. The direct row times `Recommender.recommend` on one request in this process,
single-threaded like a replica with num_cpus=1, before and after the Serve rows; Serve's
added p50 = the 1-client p50 minus the direct p50. The "steering off" row gives the same
preferences to the model only: steering's added p50 = the direct p50 minus that row's.
A call that follows an idle pause runs slower than one of a back-to-back loop (caches and
an idle core go cold), so a second direct row paces its calls --gap-ms apart, and the
handler p50 column is the app's own `latency_ms` (model and batching inside the replica):
client p50 minus handler p50 is the time spent outside it.
Without --run it builds a random-weight Mender-Tok run folder (steerrec.serving.tiny_run).
Requests are drawn from --distinct bodies (random histories and preferences): with the
default 50,000 nearly every request is new, so Mender-Tok's cache of frozen-encoder
states rarely hits; --distinct 256 measures a workload of repeated queries.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import tempfile
import time
from pathlib import Path

import numpy as np

from steerrec.cluster import init_ray
from steerrec.serving.ingress import INGRESSES, use_haproxy_ingress

NAN = float("nan")
PREFERENCES = ["avoid bulky headsets", "prefer cheap things", "like wireless", "no leather", "want light gear"]


def _requests(item_ids: list[str], n: int, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    return [
        {
            "history": rng.sample(item_ids, rng.randint(3, 10)),
            "preferences": rng.sample(PREFERENCES, rng.randint(0, 2)),
            "k": 10,
        }
        for _ in range(n)
    ]


def _stats(latencies: list[float]) -> tuple[float, float, float]:
    p = np.percentile(np.asarray(latencies) * 1000, [50, 95, 99]) if latencies else [float("nan")] * 3
    return float(p[0]), float(p[1]), float(p[2])


def direct_latencies(
    run_dir: Path, bodies: list[dict], seconds: float, beam_size: int, gap_s: float = 0.0, steering: bool = True
) -> list[float]:
    """Seconds per `Recommender.recommend` of one request, back to back or `gap_s` apart;
    `steering=False` gives preferences to the model only (what steering adds is the difference)."""
    import torch

    from steerrec.serving import Recommender, RecommendRequest
    from steerrec.steering import SteeringConfig

    torch.set_num_threads(1)
    rec = Recommender.from_run(run_dir, beam_size=beam_size, steering=SteeringConfig(enabled=steering))
    requests = [RecommendRequest(**b) for b in bodies]
    rec.recommend(requests[:1])  # warm-up
    out, end, i = [], time.perf_counter() + seconds, 0
    while time.perf_counter() < end:
        if gap_s:
            time.sleep(gap_s)
        start = time.perf_counter()
        rec.recommend([requests[i % len(requests)]])
        out.append(time.perf_counter() - start)
        i += 1
    return out


async def _load(
    url: str, bodies: list[dict], clients: int, seconds: float
) -> tuple[list[float], list[float], int, float]:
    """Client-side latencies (s), the handler's own `latency_ms` of each answer (s), errors, wall s."""
    import aiohttp

    latencies, handler, errors = [], [], 0
    end = time.perf_counter() + seconds

    async def client(session, offset: int) -> None:
        nonlocal errors
        i = offset
        while time.perf_counter() < end:
            start = time.perf_counter()
            request = session.post(url, json=bodies[i % len(bodies)]) if bodies else session.get(url)
            async with request as resp:
                body = await resp.read()
                if resp.status == 200:
                    latencies.append(time.perf_counter() - start)
                    if bodies:
                        handler.append(json.loads(body)["latency_ms"] / 1000)
                else:
                    errors += 1
            i += clients

    began = time.perf_counter()
    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as session:
        await asyncio.gather(*(client(session, c) for c in range(clients)))
    return latencies, handler, errors, time.perf_counter() - began


def serve_rows(run_dir: Path, bodies: list[dict], args) -> list[tuple]:
    import ray
    from ray import serve
    from steerrec.serving.app import SteerrecApp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # address="local": a fresh cluster of its own, even when another one runs on the machine
    init_ray(num_cpus=2, include_dashboard=False, configure_logging=False, log_to_driver=False)
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    rows = []
    try:
        for batching, size, wait in (("on", args.max_batch_size, args.wait_ms / 1000), ("off", 1, 0.0)):
            app = SteerrecApp.options(ray_actor_options={"num_cpus": 1})
            serve.run(
                app.bind(
                    run_dir=str(run_dir),
                    beam_size=args.beam_size,
                    max_batch_size=size,
                    batch_wait_timeout_s=wait,
                    cpus=[1] if args.pin else None,
                ),
                name="bench",
            )
            url = f"http://127.0.0.1:{port}/v1/recommend"
            asyncio.run(_load(url, bodies, 1, 1.0))  # warm-up
            for clients in args.clients:
                lat, handler, errors, wall = asyncio.run(_load(url, bodies, clients, args.seconds))
                rows.append(
                    (f"serve, batching {batching}", clients, len(lat) / wall, *_stats(lat), errors, _stats(handler)[0])
                )
            if batching == "on":  # Serve's fixed cost per request: a route that runs no model
                for clients in (1, max(args.clients)):
                    lat, _, errors, wall = asyncio.run(
                        _load(url.replace("/v1/recommend", "/healthz"), [], clients, 2.0)
                    )
                    rows.append(("serve, GET /healthz", clients, len(lat) / wall, *_stats(lat), errors, NAN))
    finally:
        serve.shutdown()
        ray.shutdown()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, help="run folder; default: a random Mender-Tok built here")
    parser.add_argument("--seconds", type=float, default=10.0, help="duration of each setting")
    parser.add_argument("--clients", type=lambda s: [int(x) for x in s.split(",")], default=[1, 4, 16])
    parser.add_argument("--max-batch-size", type=int, default=16)
    parser.add_argument("--wait-ms", type=float, default=2.0)
    parser.add_argument("--beam-size", type=int, default=20)
    parser.add_argument("--items", type=int, default=500, help="catalog size of the built run folder")
    parser.add_argument("--distinct", type=int, default=50000, help="distinct request bodies, cycled")
    parser.add_argument(
        "--pin",
        action="store_true",
        help="the replica alone on core 1, everything else (this load generator, Ray, the "
        "proxy) on core 0; without it all share every core",
    )
    parser.add_argument(
        "--gap-ms",
        type=float,
        default=5.0,
        help="idle time between the calls of the paced direct row (a Serve round trip leaves "
        "the replica idle about this long between requests of one client)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        help="folder for serve_load.json (settings and rows) and serve_load.png (QPS and "
        "p50/p95 against clients, batching on and off)",
    )
    parser.add_argument(
        "--ingress",
        choices=INGRESSES,
        default="proxy",
        help="Serve's Python proxy, or HAProxy straight to the replica with user code on its "
        "main loop (steerrec.serving.ingress)",
    )
    args = parser.parse_args()
    if args.pin and not {0, 1} <= os.sched_getaffinity(0):
        parser.error(f"--pin needs cores 0 and 1; this process may use {sorted(os.sched_getaffinity(0))}")
    if args.pin:  # this process and the Ray it starts (daemons, proxy, HAProxy) on core 0; the replica pins to 1
        os.sched_setaffinity(0, {0})
    if args.ingress == "haproxy":  # read by Serve at import, here and in the Ray processes this one starts
        use_haproxy_ingress()
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = args.run
        if run_dir is None:
            from steerrec.serving.tiny_run import build_run

            run_dir = build_run(
                Path(tmp) / "run", n_items=args.items, n_users=50, codebook_sizes=(16, 16, 8), hidden=64, d_model=64
            )
        import pyarrow.parquet as pq

        item_ids = pq.read_table(Path(run_dir) / "semantic_ids.parquet", columns=["item_id"]).column(0).to_pylist()
        bodies = _requests(item_ids, args.distinct)
        # the direct call is timed before and after Serve (half the time each), so that a busy
        # moment of a shared machine does not land on the baseline alone
        gap = args.gap_ms / 1000
        direct = direct_latencies(Path(run_dir), bodies, args.seconds / 2, args.beam_size)
        unsteered = direct_latencies(Path(run_dir), bodies, args.seconds / 2, args.beam_size, steering=False)
        paced = direct_latencies(Path(run_dir), bodies, args.seconds / 2, args.beam_size, gap)
        served = serve_rows(Path(run_dir), bodies, args)
        direct += direct_latencies(Path(run_dir), bodies, args.seconds / 2, args.beam_size)
        unsteered += direct_latencies(Path(run_dir), bodies, args.seconds / 2, args.beam_size, steering=False)
        paced += direct_latencies(Path(run_dir), bodies, args.seconds / 2, args.beam_size, gap)
        rows = [
            ("direct call, 1 thread", 1, len(direct) / sum(direct), *_stats(direct), 0, NAN),
            ("direct, steering off", 1, len(unsteered) / sum(unsteered), *_stats(unsteered), 0, NAN),
            (
                f"direct, {args.gap_ms:g} ms apart",
                1,
                len(paced) / (sum(paced) + gap * len(paced)),
                *_stats(paced),
                0,
                NAN,
            ),
            *served,
        ]
    _print(rows, args)
    if args.out:
        _save(rows, args)


COLUMNS = ("setting", "clients", "qps", "p50_ms", "p95_ms", "p99_ms", "errors", "handler_p50_ms")


def _save(rows: list[tuple], args) -> None:
    """serve_load.json and serve_load.png in args.out (each written to a temporary name, then renamed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    args.out.mkdir(parents=True, exist_ok=True)
    settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k != "out"}
    rows_json = [{k: None if isinstance(v, float) and v != v else v for k, v in zip(COLUMNS, row)} for row in rows]
    tmp = args.out / "serve_load.json.tmp"  # NaN (no handler time) as null: strict JSON
    tmp.write_text(json.dumps({"settings": settings, "rows": rows_json}, indent=1, allow_nan=False))
    tmp.replace(args.out / "serve_load.json")

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    for batching, color in (("on", "#4c72b0"), ("off", "#dd8452")):
        serve = sorted((r for r in rows if r[0] == f"serve, batching {batching}"), key=lambda r: r[1])
        clients = [r[1] for r in serve]
        left.plot(clients, [r[2] for r in serve], "o-", color=color, label=f"batching {batching}")
        right.plot(clients, [r[3] for r in serve], "o-", color=color, label=f"p50, batching {batching}")
        right.plot(clients, [r[4] for r in serve], "o--", color=color, alpha=0.6, label=f"p95, batching {batching}")
    left.axhline(rows[0][2], color="grey", lw=1, ls=":", label="direct call, 1 thread")
    right.axhline(rows[0][3], color="grey", lw=1, ls=":", label="direct call p50")
    for ax, ylabel in ((left, "requests / s"), (right, "latency ms")):
        ax.set_xscale("log", base=2)
        ax.set_xticks(args.clients, [str(c) for c in args.clients])
        ax.set_xlabel("concurrent clients")
        ax.set_ylabel(ylabel)
        ax.legend(fontsize=7)
    pin = ", pinned" if args.pin else ""
    fig.suptitle(
        f"{Path(str(args.run or 'random Mender-Tok')).name}: ingress {args.ingress}{pin}, beam {args.beam_size}"
    )
    fig.tight_layout()
    tmp = args.out / "serve_load.png.tmp"
    fig.savefig(str(tmp), format="png", dpi=110)
    plt.close(fig)
    tmp.replace(args.out / "serve_load.png")
    print(f"wrote {args.out / 'serve_load.json'} and {args.out / 'serve_load.png'}")


def _print(rows: list[tuple], args) -> None:
    print(
        f"ingress: {args.ingress}; {'replica pinned to core 1, the rest to 0' if args.pin else 'no pinning'}; "
        f"beam {args.beam_size}; {args.distinct} distinct bodies; {args.seconds:g} s per row"
    )
    print(
        f"{'setting':24} {'clients':>7} {'QPS':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'errors':>6}"
        f" {'handler p50':>11}"
    )
    for name, clients, qps, p50, p95, p99, errors, handler in rows:
        print(f"{name:24} {clients:7d} {qps:8.1f} {p50:8.1f} {p95:8.1f} {p99:8.1f} {errors:6d} {handler:11.1f}")
    qps = {(r[0], r[1]): r[2] for r in rows}
    top = max(args.clients)
    on, off = qps.get(("serve, batching on", top)), qps.get(("serve, batching off", top))
    if on and off:
        print(f"batching speed-up at {top} clients: {on / off:.2f}x (goal >= 3x)")
    direct_p50, paced_p50 = rows[0][3], rows[1][3]
    for name in ("serve, batching off", "serve, batching on"):
        row = next((r for r in rows if r[0] == name and r[1] == 1), None)
        if row is not None:
            print(
                f"Serve's added p50 at 1 client, {name.split(', ')[1]}: {row[3] - direct_p50:.1f} ms over a direct "
                f"call (goal <= 5 ms); {row[3] - paced_p50:.1f} ms over one {args.gap_ms:g} ms apart; "
                f"{row[3] - row[7]:.1f} ms outside the handler"
            )


if __name__ == "__main__":
    main()
