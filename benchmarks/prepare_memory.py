"""Peak memory of the prepare pipeline on a synthetic Amazon-2018 review file.

    python benchmarks/prepare_memory.py --reviews 1000000

Writes a gzip JSON-lines file in the Amazon 2018 review format (in a temp folder under
/tmp, removed afterwards unless --keep), runs `prepare` on it in a child interpreter and
prints: the uncompressed input size, the child's peak RSS (VmHWM), its baseline
after the imports, the increase over that baseline, wall time and rows per second.
"""

from __future__ import annotations

import argparse
import gzip
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

# VmHWM is the process's own peak RSS; ru_maxrss would carry the parent's peak over exec
CHILD = """
import json, resource, sys, time
def hwm():
    try:
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
from steerrec.data.prepare import PrepareConfig, prepare
base = hwm()
start = time.perf_counter()
summary = prepare(PrepareConfig(format="amazon2018", input=sys.argv[1], out=sys.argv[2]))
wall = time.perf_counter() - start
peak = hwm()
print(json.dumps({"base_kib": base, "peak_kib": peak, "wall_s": wall, "counts": summary["counts"],
                  "rows_read": summary["rows_read"]["interactions"]}))
"""
WORDS = np.array(
    [
        "the",
        "a",
        "this",
        "great",
        "product",
        "works",
        "well",
        "bad",
        "not",
        "very",
        "good",
        "quality",
        "price",
        "skin",
        "hair",
        "smell",
        "love",
        "hate",
        "would",
        "buy",
        "again",
        "color",
        "size",
        "small",
        "large",
        "soft",
        "dry",
        "oily",
        "cheap",
        "value",
        "gift",
        "shipping",
        "arrived",
        "broken",
        "fine",
        "nice",
        "okay",
        "recommend",
    ]
)


def write_reviews(path: Path, n: int, seed: int = 0, chunk: int = 10_000) -> int:
    """`n` synthetic reviews (JSON lines, gzip); returns the uncompressed size in bytes."""
    rng = np.random.default_rng(seed)
    n_users, n_items = max(n // 8, 1), max(n // 25, 1)
    size = 0
    with gzip.open(path, "wt", compresslevel=1, encoding="utf-8") as handle:
        for begin in range(0, n, chunk):
            m = min(chunk, n - begin)
            users = rng.zipf(1.3, m) % n_users
            items = rng.zipf(1.2, m) % n_items
            stamps = rng.integers(1_100_000_000, 1_540_000_000, m)
            ratings = rng.choice([1.0, 2.0, 3.0, 4.0, 5.0], m, p=[0.05, 0.05, 0.1, 0.2, 0.6])
            lengths = rng.integers(5, 150, m)
            words = WORDS[rng.integers(0, len(WORDS), int(lengths.sum()))]
            cuts = np.cumsum(lengths)[:-1]
            lines = []
            for j, text in enumerate(np.split(words, cuts)):
                review = {
                    "overall": ratings[j],
                    "verified": True,
                    "reviewTime": "09 1, 2016",
                    "reviewerID": f"A{users[j]:013d}",
                    "asin": f"B{items[j]:09d}",
                    "style": {"Size:": " 7.0 oz"},
                    "reviewerName": "Some One",
                    "reviewText": " ".join(text),
                    "summary": " ".join(text[:4]),
                    "unixReviewTime": int(stamps[j]),
                }
                lines.append(json.dumps(review))
            block = "\n".join(lines) + "\n"
            size += len(block.encode("utf-8"))
            handle.write(block)
    return size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reviews", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", action="store_true", help="keep the temp folder")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="steerrec-prepare-memory-", dir="/tmp"))
    try:
        reviews = work / "reviews.json.gz"
        start = time.perf_counter()
        raw_bytes = write_reviews(reviews, args.reviews, args.seed)
        generate_s = time.perf_counter() - start
        done = subprocess.run(
            [sys.executable, "-c", CHILD, str(reviews), str(work / "out")], check=True, capture_output=True, text=True
        )
        result = json.loads(done.stdout.strip().splitlines()[-1])
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    mib = 1 << 20
    peak, base = result["peak_kib"] * 1024, result["base_kib"] * 1024
    rows = [
        ("reviews", f"{result['rows_read']:,}"),
        ("gzip file", f"{reviews.name} (generated in {generate_s:.0f} s)"),
        ("uncompressed input", f"{raw_bytes / mib:,.1f} MiB"),
        ("baseline RSS (after imports)", f"{base / mib:,.1f} MiB"),
        ("peak RSS", f"{peak / mib:,.1f} MiB"),
        ("increase over baseline", f"{(peak - base) / mib:,.1f} MiB ({(peak - base) / raw_bytes:.0%} of input)"),
        ("wall time", f"{result['wall_s']:.1f} s"),
        ("rows/s", f"{result['rows_read'] / result['wall_s']:,.0f}"),
        ("kept", json.dumps(result["counts"])),
    ]
    for name, value in rows:
        print(f"{name:<30} {value}")


if __name__ == "__main__":
    main()
