"""RQ-VAE training speed and ID quality on synthetic clustered embeddings (CPU).

    .venv/bin/python benchmarks/rqvae_speed.py --epochs 5 20 --items 10000 --dim 384

Vectors come from a two-level cluster hierarchy (coarse centers, fine centers around
each, noise around those), L2-normalized like sentence embeddings. Each epoch count in
--epochs is a separate training run with the default config (3 levels x 256 codes,
hidden [512, 256], latent 128) apart from input_dim and the flags below. Prints one row
per run; "init s" is standardization plus k-means initialization, "s/epoch" the median.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from steerrec.ids.rqvae import RQVAEConfig
from steerrec.ids.semantic_ids import assign_codes, quality_report, train_rqvae


def clustered(n: int, dim: int, coarse: int, fine: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    top = rng.normal(size=(coarse, dim))
    sub = top[:, None, :] + 0.5 * rng.normal(size=(coarse, fine, dim))  # [coarse, fine, dim]
    which = rng.integers(0, coarse * fine, size=n)
    x = sub.reshape(-1, dim)[which] + 0.25 * rng.normal(size=(n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, nargs="+", default=[5])
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    x = clustered(args.items, args.dim, coarse=100, fine=20, seed=args.seed)
    print(
        f"{args.items} items, {args.dim}-d, batch {args.batch_size}, {args.threads} thread(s), "
        f"torch {torch.__version__}"
    )
    header = (
        "epochs",
        "init s",
        "s/epoch",
        "recon",
        "cov 1",
        "cov 2",
        "cov 3",
        "coll. before",
        "max group",
        "coll. after",
        "unique",
    )
    print(" | ".join(header))
    # warm-up: the one-time imports (scikit-learn, torch._dynamo via the optimizer)
    train_rqvae(x[:256], RQVAEConfig(input_dim=args.dim, epochs=1, codebook_size=16), progress=False)
    for epochs in args.epochs:
        cfg = RQVAEConfig(input_dim=args.dim, epochs=epochs, batch_size=args.batch_size, seed=args.seed)
        rows: list[dict] = []
        started = time.perf_counter()
        model = train_rqvae(x, cfg, report=rows.append, progress=False)
        total = time.perf_counter() - started
        per_epoch = float(np.median([r["seconds"] for r in rows]))
        q = quality_report(model, x, assign_codes(model, x))
        values = (
            epochs,
            f"{total - sum(r['seconds'] for r in rows):.2f}",
            f"{per_epoch:.2f}",
            f"{q['recon_mse']:.4f}",
            f"{q['coverage_1']:.3f}",
            f"{q['coverage_2']:.3f}",
            f"{q['coverage_3']:.3f}",
            q["collisions_before"],
            q["max_group_size"],
            q["collisions_after"],
            q["unique_ids"],
        )
        print(" | ".join(str(v) for v in values))


if __name__ == "__main__":
    main()
