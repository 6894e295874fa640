"""The share of history slots that are padding in training batches, plain against length-bucketed.

    python benchmarks/batch_padding.py --data /abs/lcrec/office --batch-size 256 --buckets 4 8 16
    python benchmarks/batch_padding.py --data /abs/office/data --batch-size 64 \
        --idgenrec-run /abs/office/runs/idgenrec-s0 --benchmark /abs/office/benchmark

Reads the dataset folder's training sequences (jobs/prepare_data.py), cuts each history to
--max-history items, orders one epoch's batches as training does (steerrec.train.batch_order)
and reports the padding share when each batch is cut to its longest history (as TIGER and
Mender-Emb batches are), so the share removed by bucketing is encoder work saved. With
--idgenrec-run (an IDGenRec run folder or its phases/ folder, holding ids_0.json) the
lengths are IDGenRec's: each training example's history in ID tokens, the part of its
prompt that varies (idgenrec.train.length_buckets buckets by it).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from steerrec.data import io, schema
from steerrec.train.batch_order import batch_indices, padding_share


def idgenrec_lengths(data: Path, benchmark: Path | None, run: Path) -> np.ndarray:
    """Training examples' history lengths in ID tokens, with the run's first IDs."""
    from steerrec.train.idgenrec_batches import example_lengths
    from steerrec.train.idgenrec_ids import ids_file, load_ids, phases_of
    from steerrec.train.idgenrec_job import IDGenRecJobConfig, read_data

    if benchmark is None:
        raise SystemExit("--idgenrec-run needs --benchmark (the training examples are the benchmark's)")
    path = ids_file(phases_of(run), 0)
    if not path.is_file():
        raise SystemExit(f"{path}: missing (not an IDGenRec run folder that has its first IDs?)")
    examples = read_data(IDGenRecJobConfig(data=str(data), benchmark=str(benchmark), out=str(run))).train
    return example_lengths(examples, load_ids(path)[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--buckets", type=int, nargs="+", default=[4, 8, 16])
    parser.add_argument("--max-history", type=int, default=20)
    parser.add_argument("--seeds", type=int, default=3, help="epochs (shuffles) averaged")
    parser.add_argument("--idgenrec-run", type=Path, help="IDGenRec run folder: lengths in ID tokens")
    parser.add_argument("--benchmark", type=Path, help="the benchmark folder (with --idgenrec-run)")
    args = parser.parse_args()
    if args.idgenrec_run is not None:
        length = idgenrec_lengths(args.data, args.benchmark, args.idgenrec_run)
    else:
        seq = io.read_table(str(args.data / schema.SEQUENCES_FILE), ["history", "split"]).to_pandas()
        length = np.minimum(seq[seq["split"] == "train"]["history"].map(len).to_numpy(), args.max_history)
    encoded = {"n": len(length), "length": length}
    rows = []
    for buckets in [0, *args.buckets]:
        shares = [
            padding_share(length, batch_indices(encoded, args.batch_size, True, seed, buckets=buckets))
            for seed in range(args.seeds)
        ]
        rows.append((buckets, float(np.mean(shares))))
    plain = rows[0][1]
    unit = "ID tokens" if args.idgenrec_run is not None else f"items of {args.max_history}"
    print(f"{args.data.name}: {len(length)} training examples, mean history {length.mean():.1f} {unit}")
    print(f"{'buckets':>8} {'padding':>8} {'removed':>8}")
    for buckets, share in rows:
        print(f"{buckets or 'off':>8} {100 * share:>7.1f}% {100 * (1 - share / plain):>7.1f}%")


if __name__ == "__main__":
    main()
