"""Where a pipeline run's training time went, summed over every sitting that trained it.

    python benchmarks/pipeline_time.py --out /abs/outputs/lcrec/office

A run that spans sittings (killed, resumed) has no single wall time; each training run's
metrics.json keeps one row per epoch with its seconds (training and validation) whichever
sitting ran it, so the sum over the rows is the run's training time as if it had run in
one go. This script adds them up per run folder under --out (`ids/`: the RQ-VAE; `runs/*`:
each model; IDGenRec's phases one by one) and prints a table: epochs, optimizer steps,
training seconds, validation seconds (an epoch's seconds less its training seconds),
steps/s. Not counted: the text embedder's pass over the items, data preparation and the
evaluation stage (seconds each in summary.json when a sitting ran them, printed below the
table). A run still in progress (no metrics.json yet) is read from its newest checkpoint's
state.json (`checkpoints/`, or each IDGenRec phase's folder under `phases/`) and marked
"(in progress)". On a shared machine the figures are upper bounds of what idle cores take.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def epoch_rows(metrics: dict | list) -> dict[str, list[dict]]:
    """{part: its epoch rows}: one part for a loop summary (or the RQ-VAE's list of rows), one
    per phase for IDGenRec's."""
    if isinstance(metrics, list):
        return {"": metrics}
    if "history" in metrics:
        return {"": metrics["history"]}
    return {name: phase.get("history", []) for name, phase in metrics.get("phases", {}).items()}


def totals(rows: list[dict]) -> dict[str, float]:
    train = sum(r.get("train_seconds", 0.0) for r in rows)
    seconds = sum(r.get("seconds", 0.0) for r in rows)
    steps = sum(r.get("steps", 0) for r in rows)
    return {
        "epochs": len(rows),
        "steps": steps,
        "train_s": train,
        "valid_s": seconds - train,
        "total_s": seconds,
        "steps_per_s": steps / train if train else 0.0,
    }


def _read(path: Path) -> dict | list:
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise SystemExit(f"{path}: not JSON ({err})") from err


def in_progress(folder: Path) -> dict[str, list[dict]]:
    """{part: epoch rows} of a run without metrics.json, from its newest checkpoints' state.json."""
    from steerrec.train.checkpoint import STATE, latest_checkpoint
    from steerrec.train.idgenrec_ids import PHASES_DIR

    phases = sorted(p for p in (folder / PHASES_DIR).glob("*") if p.is_dir())
    roots = {"": folder / "checkpoints"} | {p.name: p for p in phases}
    latest = {part: latest_checkpoint(root) for part, root in roots.items() if root.is_dir()}
    return {part: _read(ckpt / STATE)["history"] for part, ckpt in latest.items() if ckpt is not None}


def collect(out: Path) -> list[tuple[str, dict[str, float]]]:
    folders = [out / "ids"] if (out / "ids").is_dir() else []
    folders += sorted(p for p in (out / "runs").glob("*") if p.is_dir())
    table = []
    for folder in folders:
        done = (folder / "metrics.json").is_file()
        parts = epoch_rows(_read(folder / "metrics.json")) if done else in_progress(folder)
        for part, rows in parts.items():
            name = folder.name + (f"/{part}" if part else "") + ("" if done else " (in progress)")
            table.append((name, totals(rows)))
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="a pipeline's out folder")
    args = parser.parse_args()
    table = collect(args.out)
    if not table:
        raise SystemExit(f"{args.out}: no ids/metrics.json or runs/*/metrics.json (not a pipeline out folder?)")
    print("| run | epochs | steps | train min | valid min | total min | steps/s |")
    print("|---|---|---|---|---|---|---|")
    for name, t in table:
        print(
            f"| {name} | {t['epochs']} | {t['steps']} | {t['train_s'] / 60:.1f} | {t['valid_s'] / 60:.1f} "
            f"| {t['total_s'] / 60:.1f} | {t['steps_per_s']:.2f} |"
        )
    total = sum(t["total_s"] for _, t in table)
    print(f"| all | | | | | {total / 60:.1f} | |")
    summary = args.out / "summary.json"
    if summary.is_file():
        ran = [s for s in json.loads(summary.read_text()).get("stages", []) if s.get("status") == "ran"]
        for stage in ran:
            print(f"last sitting: {stage['stage']} {stage['seconds'] / 60:.1f} min")


if __name__ == "__main__":
    main()
