"""Train the RQ-VAE on item embeddings and write semantic IDs into an ids folder (Ray Train, 1 worker).

    ray job submit --working-dir . --runtime-env-json '{"excludes": [".git"]}' -- \
        python jobs/train_semantic_ids.py --data /abs/data/world --out /abs/runs/ids rqvae.epochs=200

`--embeddings` takes a Parquet file (item_id, embedding); without it the items' rendered
text is embedded with `embedder.model` (MiniLM by default). The RQ-VAE trains on
steerrec.train.loop (checkpoints every `checkpoint_every` epochs; a failed worker resumes
from the latest). The folder gets semantic_ids.parquet, rqvae/, quality.json,
metrics.json, run.json and ray/. Trailing `key=value` pairs override SemanticIdJobConfig
fields (rqvae.*, embedder.*, scaling.*, checkpoint_every, progress); an unknown key is an error.
"""

from __future__ import annotations

import argparse

from steerrec.cli import main
from steerrec.cluster import init_ray
from steerrec.config import load
from steerrec.train.semantic_ids import SemanticIdJobConfig, train_semantic_ids


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="dataset folder (items.parquet)")
    parser.add_argument("--out", required=True, help="the ids folder to write")
    parser.add_argument("--embeddings", default="", help="Parquet with item_id, embedding (optional)")
    parser.add_argument("--config", help="YAML with SemanticIdJobConfig fields")
    parser.add_argument("--local", action="store_true", help="run in this process, without Ray Train")
    parser.add_argument("overrides", nargs="*", help="key=value, e.g. rqvae.codebook_size=256")
    return parser


def run(args: argparse.Namespace) -> None:
    flags = {"data": args.data, "out": args.out, "embeddings": args.embeddings, "use_ray": not args.local}
    cfg = load(SemanticIdJobConfig, args.config, args.overrides, flags)
    if cfg.use_ray:
        init_ray()
    quality = train_semantic_ids(cfg)
    print(f"\n{cfg.out}")
    for name, value in quality.items():
        print(f"  {name:<24} {value}")


if __name__ == "__main__":
    main(run, parser())
