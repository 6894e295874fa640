"""Semantic-ID quality: code use per level and items sharing an L-code ID, by embedder and assignment.

    python benchmarks/semantic_id_quality.py --data /abs/lcrec/office /abs/lcrec/scientific \
        --embedders minilm mpnet --epochs 1000

Each dataset folder comes from jobs/prepare_data.py (LC-Rec: --format lcrec). Items are
embedded once per embedder from their rendered text (cached under --cache), one RQ-VAE is
trained per (dataset, embedder), and its codes are assigned two ways: the nearest code at
every level, and distinct close last-level codes for items sharing a prefix
(`rqvae.last_level=unique`, steerrec.ids.uniform). Collisions are counted before the
collision code (LETTER reports 1.2% of Scientific's items sharing an ID, plain RQ-VAE 20%).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import numpy as np

from steerrec.embed import EmbedderConfig
from steerrec.ids.rqvae import RQVAEConfig
from steerrec.ids.semantic_ids import assign_codes, prefix_collisions, quality_report, train_rqvae
from steerrec.train.semantic_ids import SemanticIdJobConfig, load_embeddings


def embeddings(data: Path, embedder: str, max_tokens: int, cache: Path) -> np.ndarray:
    """The items' text embeddings as the semantic-IDs job computes them, cached per setting."""
    path = cache / f"{data.name}-{embedder}-{max_tokens}.npy"
    if path.is_file():
        return np.load(path)
    emb = EmbedderConfig(model=embedder, max_seq_length=max_tokens, num_threads=2)
    _, vectors = load_embeddings(SemanticIdJobConfig(data=str(data), out=str(cache), embedder=emb))
    cache.mkdir(parents=True, exist_ok=True)
    np.save(path, vectors)
    return vectors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, nargs="+", required=True, help="prepared dataset folders")
    parser.add_argument("--embedders", nargs="+", default=["minilm", "mpnet"])
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=1000)
    parser.add_argument("--hidden", type=int, nargs="+", default=[512, 256])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache", type=Path, default=Path("outputs/semantic_id_quality"))
    parser.add_argument("--out", type=Path, help="write the rows as JSON here")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(2)
    rows = []
    for data in args.data:
        for embedder in args.embedders:
            x = embeddings(data.absolute(), embedder, args.max_tokens, args.cache)
            cfg = RQVAEConfig(input_dim=x.shape[1], hidden_dims=args.hidden, epochs=args.epochs, seed=args.seed)
            started = time.perf_counter()
            model = train_rqvae(x, cfg, progress=True)
            seconds = time.perf_counter() - started
            for last in ("nearest", "unique"):
                model.cfg = dataclasses.replace(cfg, last_level=last)
                codes = assign_codes(model, x)
                q = quality_report(model, x, codes)
                shared, largest = prefix_collisions(codes)
                rows.append({"data": data.name, "embedder": embedder, "last_level": last, "items": len(x),
                             **{f"use_{i + 1}": q[f"coverage_{i + 1}"] for i in range(cfg.n_levels)},
                             "shared": shared, "shared_pct": 100 * shared / len(x), "largest": largest,
                             "recon_mse": q["recon_mse"], "train_s": seconds})  # fmt: skip
                print(json.dumps(rows[-1]), flush=True)
    print(f"\nRQ-VAE {args.hidden} -> 128, 3 x 256 codes, {args.epochs} epochs, seed {args.seed}; "
          f"{args.max_tokens} tokens of item text")  # fmt: skip
    head = f"{'data':<12} {'embedder':<8} {'last level':<10} {'items':>6} {'use 1/2/3 %':>16} {'shared':>12}"
    print(head + f" {'largest':>7} {'recon':>6} {'train s':>8}")
    for r in rows:
        use = "/".join(f"{100 * r[f'use_{i}']:.0f}" for i in (1, 2, 3))
        shared = f"{r['shared']} ({r['shared_pct']:.1f}%)"
        print(f"{r['data']:<12} {r['embedder']:<8} {r['last_level']:<10} {r['items']:>6} {use:>16} {shared:>12} "
              f"{r['largest']:>7} {r['recon_mse']:>6.3f} {r['train_s']:>8.0f}")  # fmt: skip
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        tmp = args.out.with_suffix(".tmp")
        tmp.write_text(json.dumps(rows, indent=1))
        tmp.replace(args.out)


if __name__ == "__main__":
    main()
