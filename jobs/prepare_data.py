"""Prepare a dataset folder (items, interactions, sequences, manifest) from a public format.

    ray job submit --working-dir . -- python jobs/prepare_data.py \
        --format amazon2018 --input /abs/path/All_Beauty_5.json.gz --out /abs/path/data/beauty

    ray job submit --working-dir . -- python jobs/prepare_data.py --format world --out /abs/data/world world.n_users=200

Runs as plain `python jobs/prepare_data.py ...` too (this stage needs no Ray). Paths are
absolute under `ray job submit` (the job runs in a copy of the folder); `--out` may be a
URI (s3://, gs://). Trailing `key=value` pairs override PrepareConfig fields.
"""

from __future__ import annotations

import argparse

from steerrec.cli import main
from steerrec.config import load
from steerrec.data.prepare import FORMATS, PrepareConfig, prepare


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--format", required=True, choices=FORMATS)
    parser.add_argument("--input", help="interactions/reviews file (not needed for world)")
    parser.add_argument("--meta", help="item metadata file")
    parser.add_argument("--out", required=True, help="dataset folder: local path or URI")
    parser.add_argument("--kcore", type=int, default=5)
    parser.add_argument("--max-history", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--strict", action="store_true", help="the first bad row is an error")
    parser.add_argument("overrides", nargs="*", help="key=value overrides, e.g. max_bad_fraction=0.05")
    return parser


def run(args: argparse.Namespace) -> None:
    flags = {
        "format": args.format,
        "input": args.input,
        "meta": args.meta,
        "out": args.out,
        "kcore": args.kcore,
        "max_history": args.max_history,
        "seed": args.seed,
        "strict": args.strict,
    }
    cfg = load(PrepareConfig, None, args.overrides, flags)
    summary = prepare(cfg)
    counts = summary["counts"]
    rows = [("users", counts["users"]), ("items", counts["items"]), ("interactions", counts["interactions"])]
    rows += [(f"sequences.{split}", n) for split, n in counts["sequences"].items()]
    rows += [
        ("rows read", summary["rows_read"]["interactions"]),
        ("duplicates dropped", summary["duplicates_dropped"]),
        ("k-core dropped", summary["kcore_dropped"]),
        ("items without metadata", summary["items_without_metadata"]),
    ]
    for what, reasons in summary["rows_skipped"].items():
        rows += [(f"skipped {what}: {reason}", n) for reason, n in sorted(reasons.items())]
    print(f"\n{cfg.out}")
    for name, value in rows:
        print(f"  {name:<40} {value:>12,}")


if __name__ == "__main__":
    main(run, parser())
