"""IDGenRec's textual IDs on a real catalog: pre-train the ID generator, run Algorithm 1, print the report.

    python benchmarks/idgenrec_ids.py --data /abs/data/lcrec_office --work /tmp/idgenrec_ids

The generator is a T5 built from config (no pre-trained T5 ships offline) trained here on
item text -> the title's first tokens for --epochs epochs (the paper starts from a T5
fine-tuned on article tag generation); then every item gets a unique ID by diverse beam
search in 5 groups, penalty 0.1..1.0, windows [1, 10) then [10, 20) tokens. Prints the
share of items that needed a second try and a longer ID (the paper: 11.2% and 3.72% on
its largest set), the mean length, fallbacks, empty texts, timings and ten example IDs.
A rerun with the same --work resumes the pre-training from its last checkpoint (a finished
one is read back); --max-items N gives the first N items IDs (a quicker measurement).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from steerrec.cli import main
from steerrec.data import io, schema
from steerrec.data.text import render_items
from steerrec.ids.textual import DiverseIdConfig
from steerrec.models.idgenrec import IDGenRecConfig
from steerrec.models.seq2seq import T5StackConfig
from steerrec.train.idgenrec import IDGenRecTask, IDGenRecTrainConfig
from steerrec.train.idgenrec_batches import IDGenRecData, Split
from steerrec.train.idgenrec_ids import compute_ids, run_tokenizer
from steerrec.train.loop import BEST, LoopConfig, fit_local


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="dataset folder (items.parquet)")
    parser.add_argument("--work", required=True, help="folder for the tokenizer, checkpoints and results.json")
    parser.add_argument("--epochs", type=int, default=3, help="generator pre-training epochs")
    parser.add_argument("--d-model", type=int, default=64)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--max-text-tokens", type=int, default=48)
    parser.add_argument("--vocab", type=int, default=8000)
    parser.add_argument("--max-items", type=int, default=0, help="IDs for the first N items only (0 = all)")
    return parser


def run(args: argparse.Namespace) -> None:
    from dataclasses import replace

    from safetensors.torch import load_model

    from steerrec.models.idgenrec import IDGenRec

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    items = io.read_table(f"{args.data}/{schema.ITEMS_FILE}")
    item_ids = items.column("item_id").to_pylist()
    titles = [t or "" for t in items.column("title").to_pylist()]
    data = IDGenRecData(item_ids, render_items(items), titles, Split([], []), Split([], []))
    sizes = T5StackConfig(args.layers, args.d_model, 4 * args.d_model, 4, args.d_model // 4, 0.1)
    cfg = IDGenRecTrainConfig(
        model=IDGenRecConfig(generator=sizes, recommender=sizes, max_text_tokens=args.max_text_tokens),
        ids=DiverseIdConfig(),
        tokenizer_vocab=args.vocab,
        loop=LoopConfig(batch_size=64, progress=False, num_threads=2, monitor="loss", mode="min", epochs=args.epochs),
    )
    started = time.perf_counter()
    tokenizer = run_tokenizer(data, cfg, work)
    cfg = replace(cfg, model=replace(cfg.model, vocab_size=len(tokenizer)))
    tokenizer_s = time.perf_counter() - started
    task = IDGenRecTask(data, tokenizer, cfg, "pretrain", None, None)
    summary, checkpoint = fit_local(task, cfg.loop, work / "pretrain")
    pretrain_s = time.perf_counter() - started - tokenizer_s
    model = IDGenRec(cfg.model)
    load_model(model, str(checkpoint / BEST))
    if args.max_items:  # the generator trained on every item; IDs for the first N
        n = args.max_items
        data = IDGenRecData(item_ids[:n], data.texts[:n], titles[:n], Split([], []), Split([], []))
    ids, report = compute_ids(model, tokenizer, data, cfg)
    ids_s = time.perf_counter() - started - tokenizer_s - pretrain_s
    result = report.summary() | {"catalog_items": len(item_ids), "vocab": len(tokenizer), "epochs": args.epochs}
    result |= {"tokenizer_s": tokenizer_s, "pretrain_s": pretrain_s, "ids_s": ids_s}
    result |= {"title_loss": [row.get("valid_loss") for row in summary["history"]]}
    result["examples"] = [[item_ids[i], titles[i], tokenizer.decode(list(ids[i]))] for i in range(10)]
    (work / "results.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main(run, parser())
