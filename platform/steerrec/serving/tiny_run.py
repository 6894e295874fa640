"""Run folders with a tiny random Mender-Tok or IDGenRec, for serving tests and benchmarks/serve_load.py.

    run = build_run(Path("/tmp/run"))    # then Recommender.from_run(run) or the Serve app
    run = build_idgenrec_run(Path("/tmp/idgenrec"))   # textual IDs of two words each

Random weights, a word-level tokenizer built here, random unique semantic IDs, titles
made of a small word list, and an interactions table; nothing is downloaded.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from steerrec.run_folder import new_run_info, write_run_info

WORDS = [
    "red",
    "blue",
    "green",
    "black",
    "white",
    "soft",
    "loud",
    "bulky",
    "light",
    "wireless",
    "cheap",
    "premium",
    "leather",
    "steel",
    "wooden",
    "headset",
    "speaker",
    "lamp",
    "chair",
    "shoe",
    "bag",
    "watch",
    "camera",
    "mug",
    "pen",
]
PREFERENCE_WORDS = [
    "avoid",
    "prefer",
    "like",
    "dislike",
    "want",
    "no",
    "more",
    "less",
    "bulky",
    "heavy",
    "headsets",
    "cheap",
    "things",
]


def item_title(rng: np.random.Generator) -> str:
    return " ".join(rng.choice(WORDS, size=3))


def _tokenizer(folder: Path):
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    corpus = [" ".join(WORDS + PREFERENCE_WORDS) + " Preferences : History , most recent first ;"]
    tok.train_from_iterator(corpus, trainers.WordLevelTrainer(special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]"]))
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="[PAD]", unk_token="[UNK]", cls_token="[CLS]", sep_token="[SEP]"
    )
    fast.save_pretrained(folder)
    return fast


def build_run(
    folder: Path,
    n_items: int = 50,
    n_users: int = 8,
    codebook_sizes: tuple[int, ...] = (4, 4, 4),
    seed: int = 0,
    hidden: int = 24,
    d_model: int = 16,
    max_text_tokens: int = 64,
) -> Path:
    """Write a servable Mender-Tok run folder into `folder` (created) and return it."""
    import torch
    from transformers import BertConfig, BertModel

    from steerrec.models.mender import MenderTok, MenderTokConfig
    from steerrec.models.seq2seq import T5StackConfig

    folder = Path(folder)
    source = tempfile.TemporaryDirectory()  # the encoder's source: the run folder must not need it
    encoder_dir = Path(source.name)
    tok = _tokenizer(encoder_dir)
    torch.manual_seed(seed)
    bert = BertConfig(
        vocab_size=len(tok),
        hidden_size=hidden,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=2 * hidden,
        max_position_embeddings=max_text_tokens,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    BertModel(bert).save_pretrained(encoder_dir)
    decoder = T5StackConfig(num_layers=1, d_model=d_model, d_ff=2 * d_model, num_heads=2, d_kv=8, dropout=0.0)
    config = MenderTokConfig(
        encoder=str(encoder_dir),
        max_text_tokens=max_text_tokens,
        max_history=10,
        codebook_sizes=list(codebook_sizes),
        decoder=decoder,
    )
    MenderTok(config).save(folder)
    source.cleanup()
    write_run_info(folder, new_run_info("recommender", seed, {}, model="mender_tok"))

    rng = np.random.default_rng(seed)
    n_ids = int(np.prod(codebook_sizes))
    if n_items > n_ids:
        raise ValueError(f"n_items {n_items} exceeds the {n_ids} semantic IDs of codebooks {codebook_sizes}")
    flat = rng.choice(n_ids, size=n_items, replace=False)
    codes = np.stack(np.unravel_index(flat, codebook_sizes), axis=1).astype(np.int32)
    item_ids = [f"i{n:04d}" for n in range(n_items)]
    pq.write_table(pa.table({"item_id": item_ids, "codes": codes.tolist()}), folder / "semantic_ids.parquet")
    # one catalog item has no semantic ID: it may appear in a history, never in a result
    catalog = item_ids + ["i_no_id"]
    pq.write_table(
        pa.table({"item_id": catalog, "title": [item_title(rng) for _ in catalog]}), folder / "items.parquet"
    )
    _write_interactions(folder, item_ids, n_users, rng)
    return folder


def _write_interactions(folder: Path, item_ids: list[str], n_users: int, rng: np.random.Generator) -> None:
    n_items = len(item_ids)
    users, items, stamps = [], [], []
    for u in range(n_users):
        picked = rng.choice(n_items, size=int(rng.integers(3, 9)), replace=False)
        users += [f"u{u}"] * len(picked)
        items += [item_ids[i] for i in picked]
        stamps += rng.permutation(len(picked)).tolist()
    pq.write_table(
        pa.table({"user_id": users, "item_id": items, "timestamp": pa.array(stamps, pa.int64())}),
        folder / "interactions.parquet",
    )


def build_idgenrec_run(folder: Path, n_items: int = 30, n_users: int = 8, seed: int = 0, d_model: int = 16) -> Path:
    """Write a servable IDGenRec run folder into `folder` (created) and return it: random
    weights, unique textual IDs of two words (a prefix-free set is not needed: every ID ends
    with </s> in the trie), a tokenizer trained here on the IDs and titles."""
    import torch

    from steerrec.models.idgenrec import IDGenRec, IDGenRecConfig
    from steerrec.models.idgenrec_text import TOKENIZER_FILE, build_tokenizer
    from steerrec.models.seq2seq import T5StackConfig

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    pairs = rng.choice(len(WORDS) ** 2, size=n_items, replace=False)
    texts = [f"{WORDS[p // len(WORDS)]} {WORDS[p % len(WORDS)]}" for p in pairs]
    texts[0] = WORDS[pairs[1] // len(WORDS)]  # one ID of one word, which other IDs may extend
    item_ids = [f"i{n:04d}" for n in range(n_items)]
    titles = [item_title(rng) for _ in item_ids]
    tok = build_tokenizer(WORDS + texts + titles + item_ids, 120)
    tok.backend_tokenizer.save(str(folder / TOKENIZER_FILE))
    codes = [tok.encode(t, add_special_tokens=False) for t in texts]
    torch.manual_seed(seed)
    sizes = T5StackConfig(num_layers=1, d_model=d_model, d_ff=2 * d_model, num_heads=2, d_kv=8, dropout=0.0)
    IDGenRec(IDGenRecConfig(vocab_size=len(tok), generator=sizes, recommender=sizes, max_prompt_tokens=128)).save(
        folder
    )
    write_run_info(folder, new_run_info("recommender", seed, {}, model="idgenrec"))
    ids = {"item_id": item_ids, "codes": pa.array(codes, pa.list_(pa.int32())), "text": [tok.decode(c) for c in codes]}
    pq.write_table(pa.table(ids), folder / "semantic_ids.parquet")
    pq.write_table(pa.table({"item_id": item_ids, "title": titles}), folder / "items.parquet")
    _write_interactions(folder, item_ids, n_users, rng)
    return folder
