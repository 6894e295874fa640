"""IDGenRec's item IDs and tokenizer in a run: Algorithm 1 over the generator, and their files.

ids, report = compute_ids(model, tokenizer, data, cfg)     # unique IDs, one per item
save_ids(out / "ids_1.json", ids, report, tokenizer, data)  # atomic
ids, report = load_ids(out / "ids_1.json")
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from steerrec.ids.textual import IdReport, assign_unique_ids
from steerrec.models.idgenrec_text import TOKENIZER_FILE
from steerrec.run_folder import write_json
from steerrec.train import idgenrec_batches as IB

PHASES_DIR = "phases"  # in an IDGenRec run folder: the phases' checkpoints, each round's IDs, the tokenizer


def ids_file(phases: Path, round_: int) -> Path:
    """Where round `round_`'s IDs are kept in a phases folder."""
    return Path(phases) / f"ids_{round_}.json"


def phases_of(run: Path) -> Path:
    """The phases folder of an IDGenRec run folder (`run` itself when it is one)."""
    return Path(run) / PHASES_DIR if (Path(run) / PHASES_DIR).is_dir() else Path(run)


def compute_ids(model: Any, tokenizer: Any, data: IB.IDGenRecData, cfg: Any):
    """Unique IDs for every item with the model's generator (Algorithm 1): (ids, IdReport).

    The fallback ID of an item is its id string's tokens; uniqueness is checked on the
    decoded text, so two IDs never read the same."""
    import torch

    from steerrec.models.idgenrec_text import UNK_ID, text_tokens

    model.eval()
    device = next(model.parameters()).device
    texts = text_tokens(tokenizer, data.texts, cfg.model.max_text_tokens)
    ids_cfg = cfg.ids

    def generate(items, penalty, min_len, max_len):
        x = IB.padded([texts[i] for i in items]).to(device)
        with torch.no_grad():
            return model.candidates(
                {"input_ids": x, "mask": x != 0}, ids_cfg.n_groups, ids_cfg.group_size, penalty, min_len, max_len
            )

    def fallback(item: int) -> tuple[int, ...]:
        tokens = tuple(tokenizer.encode(data.item_ids[item], add_special_tokens=False))
        if not tokens or UNK_ID in tokens:
            raise ValueError(f"item {data.item_ids[item]!r}: its id string does not tokenize without <unk>")
        return tokens

    key = lambda ids: tokenizer.decode(list(ids))
    return assign_unique_ids(len(data.item_ids), generate, ids_cfg, fallback, key, data.empty_text)


def save_ids(path: Path, ids, report: IdReport, tokenizer: Any, data: IB.IDGenRecData) -> None:
    """ids_<round>.json: the report and, per item, its ID's token ids and text."""
    rows = [{"item_id": i, "tokens": list(t), "text": tokenizer.decode(list(t))} for i, t in zip(data.item_ids, ids)]
    write_json(path, {"report": report.summary(), "ids": rows})  # atomic: a killed run never leaves half a file


def load_ids(path: Path) -> tuple[list[tuple[int, ...]], dict[str, Any]]:
    """(IDs in item order, report summary) from a file `save_ids` wrote."""
    saved = json.loads(path.read_text())
    return [tuple(r["tokens"]) for r in saved["ids"]], saved["report"]


def run_tokenizer(data: IB.IDGenRecData, cfg: Any, out: Path) -> Any:
    """The run's tokenizer: read back from out/tokenizer.json, or trained on the catalog's
    texts, titles and id strings (the fallback IDs) and saved there."""
    from steerrec.models.idgenrec_text import build_tokenizer, load_tokenizer

    path = out / TOKENIZER_FILE
    if path.is_file():
        return load_tokenizer(str(path))
    tokenizer = build_tokenizer(data.texts + data.titles + data.item_ids, cfg.tokenizer_vocab)
    tmp = path.with_name(f".{path.name}.tmp")
    tokenizer.backend_tokenizer.save(str(tmp))
    tmp.replace(path)  # atomic: a run killed while saving never reads half a tokenizer back
    return tokenizer
