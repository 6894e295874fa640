"""`make demo`: the whole pipeline on the built-in world on an embedded local Ray, the
five-axis table, then the steerable recommender on Ray Serve until Ctrl-C.

    python jobs/demo.py                      # the world's true preferences (and says so)
    python jobs/demo.py --engine local       # preferences from the local CPU LLM (few users)
    python jobs/demo.py --ingress haproxy    # Serve's HAProxy ingress (steerrec.serving.ingress)

Not a `ray job submit` entry point: it starts its own local Ray and serves from it
(or uses the cluster RAY_ADDRESS names). Ctrl-C and SIGTERM both stop it cleanly: Serve
and Ray shut down, exit status 130 / 143.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from steerrec.cli import main
from steerrec.cluster import init_ray
from steerrec.pipeline import format_summary, load_pipeline, run_pipeline
from steerrec.serving.ingress import INGRESSES, use_haproxy_ingress

REPO = Path(__file__).resolve().parents[1]
SERVABLE = ("mender_tok", "tiger")


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(REPO / "configs" / "demo.yaml"))
    parser.add_argument("--engine", choices=("truth", "local"), default="truth")
    parser.add_argument("--limit-users", type=int, default=30, help="users the local LLM writes preferences for")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--no-serve", action="store_true", help="stop after the table")
    parser.add_argument(
        "--ingress",
        choices=INGRESSES,
        default="proxy",
        help="haproxy: lower latency and more throughput, but replica ports bind to all "
        "interfaces (see steerrec.serving.ingress)",
    )
    parser.add_argument("overrides", nargs="*", help="key=value overrides of the pipeline config")
    return parser


def run(args: argparse.Namespace) -> None:
    if args.ingress == "haproxy":  # before Ray starts and before Serve is imported
        use_haproxy_ingress()
    overrides = list(args.overrides)
    if args.engine == "local":
        overrides += [
            "preferences.source=engine",
            "preferences.engine={engine: local, model: default}",
            f"preferences.limit_users={args.limit_users}",
        ]
        print(
            f"Preferences: the local Qwen2.5-0.5B on CPU (a few prompts per second at best), for the first "
            f"{args.limit_users} users only; the benchmark and the models see only those users."
        )
    else:
        print(
            "Preferences: the world's TRUE preferences (truth.parquet) stand in for an LLM's output. "
            "`make demo ENGINE=local` approximates them with the local LLM instead."
        )
    cfg = load_pipeline(args.config, overrides, root=REPO)  # every section checked before Ray starts
    init_ray(num_cpus=os.cpu_count(), include_dashboard=False, configure_logging=False)
    start = time.perf_counter()
    summary = run_pipeline(cfg)
    print(f"\n{summary['out']}  ({time.perf_counter() - start:.0f} s)\n\n{format_summary(summary)}\n")
    served = next((m for m in cfg.models if m in SERVABLE), None)
    if args.no_serve or served is None:
        return
    serve_run(Path(summary["out"]) / "runs" / f"{served}-s{cfg.seeds[0]}", args.port)


def serve_run(run_dir: Path, port: int) -> None:
    from steerrec.serving.app import AppArgs, build_app

    serve_forever(build_app(AppArgs(run_dir=str(run_dir))), port, run_dir.name)


def serve_forever(app, port: int, name: str) -> None:
    """Serve `app` until Ctrl-C or SIGTERM (steerrec.cli exits 130 / 143 after Serve stops)."""
    from ray import serve

    serve.start(http_options={"host": "127.0.0.1", "port": port})
    serve.run(app, name="steerrec", route_prefix="/")
    print(f"Serving {name} at http://127.0.0.1:{port}/  (API docs: /docs). Ctrl-C stops it.", flush=True)
    try:
        while True:
            time.sleep(3600)
    finally:
        serve.shutdown()


if __name__ == "__main__":
    main(run, parser())
