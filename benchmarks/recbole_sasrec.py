"""Our SASRec against RecBole 1.2.1's, trained to RecBole's own early stop on the same split.

    pip install --target /abs/rb recbole==1.2.1 colorlog==4.7.2 colorama==0.4.4 texttable thop \
        tabulate tensorboard absl-py --no-deps   # then remove numpy/setuptools copies from /abs/rb
    PYTHONPATH=/abs/rb python benchmarks/recbole_sasrec.py --data /abs/office/data \
        --ours /abs/office/eval/sasrec/results.json --work /tmp/recbole

RecBole is not a steerrec dependency (it pins ray<=2.6.3 and colorlog==4.7.2), so it is
installed beside the environment, not into it. `--data` is a folder from
jobs/prepare_data.py; its interactions.parquet is written as a RecBole atomic `.inter` file
(user, item, timestamp) and RecBole splits it itself: leave-one-out by time (`LS:
valid_and_test`, `order: TO`, grouped by user), the last item tested, the one before
validated, full ranking, no history masking (RecBole does not mask history for sequential
models; nor does steerrec's evaluator), histories cut at --max-len items as ours. The model
keeps RecBole's SASRec defaults (2 blocks, 2 heads, hidden 64, dropout 0.5, CE over all
items, Adam 1e-3, batch 2048) and stops when valid NDCG@10 has not improved for
--stopping-step epochs (RecBole's patience, 10 by default).

RecBole saves its best model with torch.save and reloads it with torch.load: torch >= 2.6
refuses that file by default (weights_only), so this script sets
TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1 for its own process. It reloads only the checkpoint the
same process wrote under --work. RecBole 1.2.1 also assigns NumPy 1 aliases that NumPy 2
removed (np.float_ and two more); the script restores those three names before it runs.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq

METRICS = ("recall@5", "ndcg@5", "recall@10", "ndcg@10")


def write_atomic_inter(data: Path, work: Path, name: str) -> tuple[Path, int]:
    """Write `<work>/<name>/<name>.inter` from the data folder's interactions, in time order."""
    table = pq.read_table(data / "interactions.parquet", columns=["user_id", "item_id", "timestamp"])
    frame = table.to_pandas().sort_values(["user_id", "timestamp"], kind="stable")
    folder = work / name
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.inter"
    tmp = path.with_suffix(".inter.tmp")
    with open(tmp, "w") as f:
        f.write("user_id:token\titem_id:token\ttimestamp:float\n")
        for user, item, ts in frame.itertuples(index=False):
            f.write(f"{user}\t{item}\t{ts}\n")
    os.replace(tmp, path)
    return path, len(frame)


def recbole_config(work: Path, name: str, max_len: int, stopping_step: int, epochs: int, seed: int) -> dict:
    return {
        "data_path": str(work),
        "dataset": name,
        "USER_ID_FIELD": "user_id",
        "ITEM_ID_FIELD": "item_id",
        "TIME_FIELD": "timestamp",
        "load_col": {"inter": ["user_id", "item_id", "timestamp"]},
        "MAX_ITEM_LIST_LENGTH": max_len,
        "eval_args": {"split": {"LS": "valid_and_test"}, "order": "TO", "group_by": "user", "mode": "full"},
        "metrics": ["Recall", "NDCG"],
        "topk": [5, 10],
        "valid_metric": "NDCG@10",
        "train_neg_sample_args": None,
        "loss_type": "CE",
        "epochs": epochs,
        "stopping_step": stopping_step,
        "seed": seed,
        "reproducibility": True,
        "device": "cpu",
        "use_gpu": False,
        "checkpoint_dir": str(work / "saved"),
        "show_progress": False,
        "log_wandb": False,
        "worker": 0,
    }


def numpy2_aliases() -> None:
    """RecBole 1.2.1's Config re-creates NumPy 1 aliases from names NumPy 2 removed."""
    import numpy as np

    for old, new in (("float_", np.float64), ("complex_", np.complex128), ("unicode_", np.str_)):
        if old not in np.__dict__:
            setattr(np, old, new)


def run_recbole(config: dict) -> dict:
    os.environ.setdefault("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    numpy2_aliases()
    try:
        from recbole.quick_start import run_recbole as _run
    except ImportError as e:
        raise SystemExit(
            f"recbole_sasrec: RecBole is not importable ({e}); install it beside the environment "
            "as the docstring shows and put that folder on PYTHONPATH"
        ) from None
    start = time.perf_counter()
    here = os.getcwd()
    os.chdir(config["data_path"])  # RecBole writes log/ and log_tensorboard/ under the cwd
    try:
        result = _run(model="SASRec", config_dict=config, saved=True)
    finally:
        os.chdir(here)
    out = {k: float(v) for k, v in result["test_result"].items()}
    out["seconds"] = time.perf_counter() - start
    out["best_valid_ndcg@10"] = float(result["best_valid_score"])
    return out


def ours_from(results: Path) -> dict:
    data = json.loads(results.read_text())
    return data["per_run"][0]["recommendation"]


def table(theirs: dict, ours: dict | None) -> str:
    rows = ["| metric | RecBole 1.2.1 SASRec | steerrec SASRec | ours / RecBole |", "|---|---|---|---|"]
    for m in METRICS:
        t = theirs[m]
        if ours is None:
            rows.append(f"| {m} | {t:.4f} | - | - |")
        else:
            o = ours[m]
            rows.append(f"| {m} | {t:.4f} | {o:.4f} | {o / t:.3f} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, required=True, help="a prepared data folder (jobs/prepare_data.py)")
    p.add_argument("--ours", type=Path, help="steerrec's evaluation results.json on the same data (test split)")
    p.add_argument("--work", type=Path, default=Path("outputs/recbole"))
    p.add_argument("--max-len", type=int, default=20)
    p.add_argument("--stopping-step", type=int, default=10)
    p.add_argument("--epochs", type=int, default=300)
    p.add_argument("--seed", type=int, default=2020)
    args = p.parse_args(argv)
    for what in (args.data / "interactions.parquet", args.ours):
        if what is not None and not what.is_file():
            print(f"recbole_sasrec: {what}: no such file", file=sys.stderr)
            return 2
    name = args.data.resolve().parent.name or "data"
    args.work.mkdir(parents=True, exist_ok=True)
    path, n = write_atomic_inter(args.data, args.work.resolve(), name)
    print(f"wrote {n} interactions to {path}")
    config = recbole_config(args.work.resolve(), name, args.max_len, args.stopping_step, args.epochs, args.seed)
    theirs = run_recbole(config)
    lowered = {k.lower(): v for k, v in theirs.items()}
    ours = ours_from(args.ours) if args.ours else None
    out = {"recbole": lowered, "steerrec": ours, "config": config}
    (args.work / f"{name}-recbole-sasrec.json").write_text(json.dumps(out, indent=2))
    print(f"RecBole: {theirs['seconds']:.0f} s, best valid NDCG@10 {theirs['best_valid_ndcg@10']:.4f}")
    print(table(lowered, ours))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
