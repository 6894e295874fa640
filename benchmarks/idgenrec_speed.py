"""IDGenRec recommender training speed, plain batches against length-bucketed ones.

    python benchmarks/idgenrec_speed.py --data /abs/office/data --benchmark /abs/office/benchmark \
        --run /abs/office/runs/idgenrec-s0 --config configs/lcrec_office.yaml --batches 40 --buckets 0 8

Takes a finished (or running) IDGenRec run's tokenizer and first IDs (phases/tokenizer.json,
phases/ids_0.json), so no generator is trained here, and times `--batches` optimizer steps
of the recommender phase (Rec-only, a fresh T5 of the config's size) per setting of
idgenrec.train.length_buckets, alternating the settings `--repeats` times so that a noisy
machine slows each alike. Prints steps/s and the ratio to the first setting.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import yaml


def main() -> None:
    from steerrec.config import from_dict
    from steerrec.models.idgenrec_text import TOKENIZER_FILE
    from steerrec.train.idgenrec import IDGenRecTrainConfig, train_idgenrec
    from steerrec.train.idgenrec_ids import ids_file, phases_of
    from steerrec.train.idgenrec_job import IDGenRecJobConfig, read_data

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--benchmark", type=Path, required=True)
    parser.add_argument("--run", type=Path, required=True, help="an IDGenRec run folder (its phases/ has the IDs)")
    parser.add_argument("--config", type=Path, required=True, help="a pipeline config with an idgenrec.train section")
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--buckets", type=int, nargs="+", default=[0, 8])
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    phases = phases_of(args.run)
    needed = (phases / TOKENIZER_FILE, ids_file(phases, 0))
    for path in needed:
        if not path.is_file():
            raise SystemExit(f"{path}: missing (not an IDGenRec run that has computed its first IDs?)")
    section = (yaml.safe_load(args.config.read_text()) or {}).get("idgenrec", {}).get("train", {})
    base = from_dict(IDGenRecTrainConfig, section, str(args.config), "idgenrec.train")
    base = replace(base, strategy="rec_only", pretrain_epochs=0, rounds=1, rec_epochs=1, max_valid=1)
    base = replace(base, loop=replace(base.loop, max_batches=args.batches, progress=False, patience=0))
    data = read_data(IDGenRecJobConfig(data=str(args.data), benchmark=str(args.benchmark), out=str(args.run)))
    speeds: dict[int, list[float]] = {b: [] for b in args.buckets}
    for _ in range(args.repeats):
        for buckets in args.buckets:
            with tempfile.TemporaryDirectory(prefix="idgenrec-speed-") as tmp:
                for path in needed:
                    shutil.copy(path, Path(tmp) / path.name)
                started = time.perf_counter()
                summary, _ = train_idgenrec(data, replace(base, length_buckets=buckets), tmp)
                row = summary["phases"]["rec_only"]["history"][0]
                speeds[buckets].append(row["steps"] / row["train_seconds"])
                print(f"buckets {buckets}: {speeds[buckets][-1]:.3f} steps/s ({time.perf_counter() - started:.0f} s)")
    first = float(np.mean(speeds[args.buckets[0]]))
    print(f"\n{args.data}: {args.batches} steps of batch {base.loop.batch_size}, {args.repeats} repeats")
    print("| length_buckets | steps/s | ratio |")
    print("|---|---|---|")
    for buckets, values in speeds.items():
        print(f"| {buckets or 'off'} | {np.mean(values):.3f} | {np.mean(values) / first:.2f}x |")


if __name__ == "__main__":
    main()
