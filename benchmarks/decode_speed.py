"""Trie-constrained beam search vs free beam search + invalid-ID filter: time and recall.

    .venv/bin/python benchmarks/decode_speed.py --items 2000 --queries 256 --beam 20 --train-steps 300

One TIGER model (briefly trained on a synthetic rule, "the next item is the item after the
last one in the history", so that recall means something; --train-steps 0 keeps it
random) ranks the same queries both ways. Semantic IDs are random and unique (3 levels of
--codebook codes plus a collision code). Prints seconds per query batch (median of
--repeats, the two modes taking turns), Recall@10, and the share of free beams that name
no item. Goal: constrained time <= 1.2x free time.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from steerrec.decoding import PrefixTrie, constrained_beam_search, filter_invalid, unconstrained_beam_search
from steerrec.ids.semantic_ids import add_collision_code
from steerrec.metrics import recall_at_k
from steerrec.models.tiger import Tiger, TigerConfig


def catalog(n: int, k: int, seed: int) -> np.ndarray:
    codes = np.random.default_rng(seed).integers(0, k, size=(n, 3))
    return add_collision_code(codes)


def queries(n_items: int, count: int, length: int, rng: np.random.Generator) -> tuple[list[list[int]], np.ndarray]:
    starts = rng.integers(0, n_items, size=count)
    hist = [[(s + j) % n_items for j in range(length)] for s in starts]
    return hist, (starts + length) % n_items


def train(model: Tiger, item_tokens: np.ndarray, n_items: int, steps: int, rng: np.random.Generator) -> None:
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(steps):
        hist, target = queries(n_items, 64, 5, rng)
        batch = {
            "history": torch.as_tensor(model.vocab.encode_history(hist, item_tokens, 5)),
            "target": torch.as_tensor(item_tokens[target]),
        }
        loss = model(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()


def timed(fns: dict, repeats: int) -> tuple[dict, dict]:
    """Median seconds and last output of each function, run in turn `repeats` times.

    Interleaving the runs (a, b, a, b, ...) spreads a busy moment of the machine over all
    of them instead of charging it to whichever ran then.
    """
    times: dict = {name: [] for name in fns}
    outs: dict = {}
    for _ in range(repeats):
        for name, fn in fns.items():
            started = time.perf_counter()
            outs[name] = fn()
            times[name].append(time.perf_counter() - started)
    return {name: statistics.median(t) for name, t in times.items()}, outs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--codebook", type=int, default=64)
    parser.add_argument("--queries", type=int, default=256)
    parser.add_argument("--beam", type=int, default=20)
    parser.add_argument("--train-steps", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    codes = catalog(args.items, args.codebook, 0)
    sizes = [args.codebook] * 3 + [int(codes[:, 3].max()) + 1]
    model = Tiger(
        TigerConfig(
            codebook_sizes=sizes,
            max_history=5,
            num_layers=2,
            num_decoder_layers=2,
            d_model=64,
            d_ff=256,
            num_heads=4,
            d_kv=16,
            dropout=0.0,
        )
    )
    item_tokens = model.vocab.encode_items(codes)
    started = time.perf_counter()
    train(model, item_tokens, args.items, args.train_steps, rng)
    trained_s = time.perf_counter() - started
    trie = PrefixTrie.from_codes(codes, model.vocab.offsets, model.vocab.size)
    hist, target = queries(args.items, args.queries, 5, np.random.default_rng(1))
    batch = {"history": torch.as_tensor(model.vocab.encode_history(hist, item_tokens, 5))}
    with torch.no_grad():
        state = model.encode(batch)
        common = dict(start_tokens=model.start_tokens, reorder=model.reorder)

        def free_then_filter():
            tokens, scores = unconstrained_beam_search(
                model.step_fn, len(hist), trie.depth, args.beam, state=state, **common
            )
            return filter_invalid(tokens, scores, trie, 10), tokens

        seconds, outs = timed(
            {
                "constrained": lambda: constrained_beam_search(
                    model.step_fn, len(hist), trie, args.beam, 10, state=state, **common
                ),
                "free": free_then_filter,
            },
            args.repeats,
        )
    t_con, t_free = seconds["constrained"], seconds["free"]
    items_con, _ = outs["constrained"]
    (items_free, _), tokens = outs["free"]
    invalid = float((trie.items_of_tokens(tokens.reshape(-1, trie.depth)) < 0).float().mean())
    print(
        f"TIGER 2+2 layers d_model 64, {args.items} items, {args.queries} queries, beam {args.beam}, "
        f"{args.threads} threads, trained {args.train_steps} steps ({trained_s:.0f} s); encoder time excluded"
    )
    print(f"{'decoding':<28}{'seconds':>10}{'Recall@10':>11}{'invalid beams':>15}")
    print(f"{'trie-constrained':<28}{t_con:>10.3f}{recall_at_k(items_con.numpy(), target, 10):>11.4f}{0.0:>15.3f}")
    print(
        f"{'free + filter_invalid':<28}{t_free:>10.3f}"
        f"{recall_at_k(items_free.numpy(), target, 10):>11.4f}{invalid:>15.3f}"
    )
    print(f"{'constrained / free time':<28}{t_con / t_free:>10.2f}x")


if __name__ == "__main__":
    main()
