"""LangPTune run folders compared session by session: each run's NDCG@k, and its paired
difference from the first run (the reference) over the same test sessions.

    python benchmarks/langptune_compare.py --runs <dir>/langptune_cl <dir>/langptune_0 <dir>/langptune

Every run must have profiled the same sessions in the same order (same data and
`--eval-sessions`). Each row of a run's queries.json carries its session's NDCG@k (run
folders evaluated before that field existed fail with the file and row; rerunning
jobs/train_langptune.py with the same --out and --eval-sessions evaluates them again
without training). The paired standard error is the sample std of the per-session
differences / sqrt N: the sessions' own spread cancels, so two rows whose one-run errors
overlap can still be told apart, or shown not to be.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from steerrec.langptune.evaluate import paired_difference
from steerrec.metrics import standard_error


def load_rows(run: Path, k: int) -> tuple[str, list[tuple[str, int]], np.ndarray]:
    """(variant, [(user_id, t)], per-session NDCG@k) of one run folder."""
    path = run / "queries.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no queries.json (is {run} a finished LangPTune run folder?)")
    rows = json.loads(path.read_text())
    key = f"ndcg@{k}"
    for i, row in enumerate(rows):
        if key not in row:
            raise ValueError(
                f"{path}: row {i} has no {key!r} (evaluated before per-session rows, or with another k); "
                "rerun jobs/train_langptune.py with the same --out and --eval-sessions"
            )
    variant = json.loads((run / "results.json").read_text()).get("variant", run.name)
    return variant, [(r["user_id"], int(r["t"])) for r in rows], np.array([r[key] for r in rows], dtype=np.float64)


def compare(runs: list[Path], k: int = 20) -> list[dict]:
    """One dict per run: variant, NDCG@k with its standard error, and the paired difference
    from runs[0] (none for runs[0] itself)."""
    loaded = [load_rows(r, k) for r in runs]
    ref_name, ref_sessions, ref = loaded[0]
    table = []
    for run, (variant, sessions, values) in zip(runs, loaded):
        if sessions != ref_sessions:
            first = next(
                (i for i, (a, b) in enumerate(zip(sessions, ref_sessions)) if a != b),
                min(len(sessions), len(ref_sessions)),
            )
            raise ValueError(
                f"{run / 'queries.json'}: sessions differ from {runs[0] / 'queries.json'} at row {first} "
                f"({len(sessions)} against {len(ref_sessions)} sessions)"
            )
        row = {"run": str(run), "variant": variant, f"ndcg@{k}": float(values.mean()), "se": standard_error(values)}
        if run != runs[0]:
            row["vs"] = {"reference": ref_name, **paired_difference(ref, values)}
        table.append(row)
    return table


def format_table(table: list[dict], k: int = 20) -> str:
    ref = table[0]["variant"]
    lines = [
        f"| run | variant | NDCG@{k} +- se | minus {ref} +- paired se | sessions better / worse / level |",
        "|---|---|---|---|---|",
    ]
    for row in table:
        vs = row.get("vs")
        diff = f"{vs['mean']:+.4f} +- {vs['se']:.4f}" if vs else "(reference)"
        counts = f"{vs['better']} / {vs['worse']} / {vs['level']}" if vs else ""
        name = Path(row["run"]).name
        lines.append(f"| {name} | {row['variant']} | {row[f'ndcg@{k}']:.4f} +- {row['se']:.4f} | {diff} | {counts} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", nargs="+", required=True, help="run folders; the first is the reference")
    parser.add_argument("--k", type=int, default=20)
    parser.add_argument("--json", help="also write the table here")
    args = parser.parse_args(argv)
    table = compare([Path(r) for r in args.runs], args.k)
    print(format_table(table, args.k))
    if args.json:
        Path(args.json).write_text(json.dumps(table, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
