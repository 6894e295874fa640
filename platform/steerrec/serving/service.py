"""The recommender service as a plain class: a run folder in, steered top-k lists out.

    rec = Recommender.from_run("runs/mender_tok")
    [resp] = rec.recommend([RecommendRequest(history=["B01", "B07"], preferences=["Avoid bulky headsets"])])

Requests given together share one trie-constrained beam search. Preferences steer it
(steerrec.steering): each is read as avoid or like; an avoid statement's items are left
out and a like statement's raised, through per-item biases that the search applies at
every level (a prefix whose items are all left out takes no beam). `exclude_history` is
one more such bias, so history items never take a beam either. A request's result does
not depend on what it was batched with (the beam width is the service's, not the batch's;
a request's k may not exceed it). The response says how each preference was read.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from steerrec.data.schema import INTERACTIONS, INTERACTIONS_FILE, validate
from steerrec.run_folder import JOB_FILE, SEMANTIC_IDS_FILE, load_recommender, require_file
from steerrec.serving.schemas import (
    MAX_HISTORY,
    Item,
    RecommendRequest,
    RecommendResponse,
    ScoredItem,
    SteeringReading,
    UserHistory,
)
from steerrec.steering import Reading, Steerer, SteeringConfig, item_bias

logger = logging.getLogger(__name__)

BEAM_SIZE = 20  # beams per request; the most items one request can get
# mender_emb needs an embedder at request time; sasrec has no preferences (tiger and idgenrec
# read none either, but they decode item IDs under the trie, so steering's biases reach them)
SERVABLE = ("mender_tok", "tiger", "idgenrec")


class RequestError(ValueError):
    """A request that names something the service does not know; `loc` is the field's path."""

    def __init__(self, loc: tuple[str | int, ...], message: str) -> None:
        super().__init__(message)
        self.loc = loc
        self.message = message


class UnknownUserError(KeyError):
    def __init__(self, user_id: str) -> None:
        super().__init__(user_id)
        self.user_id = user_id


@dataclass
class RunFolder:
    """What serving needs from a run folder, read by `load_run`."""

    model_name: str
    model: Any  # a GenerativeRecommender (or IDGenRec) in eval mode
    item_ids: list[str]  # row i has semantic ID codes[i]
    codes: np.ndarray  # [n_items, L]; IDGenRec: a textual ID's token ids, -1 after its end
    titles: dict[str, str]  # every catalog item
    histories: dict[str, list[str]] | None  # user -> item ids, oldest first; None without interactions
    texts: list[str] | None = None  # row i's listing for steering (items.parquet's text, else its title)


def load_run(directory: str | Path) -> RunFolder:
    """Read a recommender run folder (steerrec.run_folder documents it and checks it:
    run.json, config.yaml + model.safetensors, semantic_ids.parquet, items.parquet), plus
    interactions.parquet from the run folder or from job.yaml's `data` folder (optional)."""
    directory = Path(directory)
    require_file(directory, SEMANTIC_IDS_FILE)
    run = load_recommender(directory, models=SERVABLE)
    inter = _first_file(INTERACTIONS_FILE, directory, trained_data_folder(directory))
    histories = _read_histories(inter) if inter else None
    logger.info("%s: %s users", directory, len(histories) if histories is not None else "no")
    texts = [run.texts[i] for i in run.item_ids]
    return RunFolder(run.model_name, run.model, run.item_ids, run.codes, run.titles, histories, texts)


def trained_data_folder(directory: Path) -> Path | None:
    """The dataset folder the run was trained on (job.yaml's `data`), when it is local."""
    job = directory / JOB_FILE
    if not job.is_file():
        return None
    data = (yaml.safe_load(job.read_text()) or {}).get("data")
    return Path(data) if isinstance(data, str) and data and "://" not in data else None


def _first_file(name: str, directory: Path, data: Path | None) -> Path | None:
    for folder in (directory, data):
        if folder is not None and (folder / name).is_file():
            return folder / name
    return None


def _read_histories(path: Path) -> dict[str, list[str]]:
    schema = pa.schema([INTERACTIONS.field(n) for n in ("user_id", "item_id", "timestamp")])
    table = validate(pq.read_table(path, columns=schema.names), schema, str(path))
    table = table.sort_by([("user_id", "ascending"), ("timestamp", "ascending")])
    histories: dict[str, list[str]] = {}
    for user, item in zip(table.column("user_id").to_pylist(), table.column("item_id").to_pylist()):
        histories.setdefault(user, []).append(item)
    return histories


@dataclass(frozen=True)
class Query:
    """A checked request: known history item ids (oldest first), item rows to leave out and
    how its preferences were read."""

    history: tuple[str, ...]
    preferences: tuple[str, ...]
    k: int
    exclude: frozenset[int]
    readings: tuple[Reading, ...] = ()


class Recommender:
    """A loaded run folder answering recommend / search / user-history calls."""

    def __init__(
        self,
        run: RunFolder,
        beam_size: int = BEAM_SIZE,
        steering: SteeringConfig | None = None,
        steerer: Steerer | None = None,  # built already (its config wins over `steering`)
    ) -> None:
        if not isinstance(beam_size, int) or beam_size < 1:
            raise ValueError(f"beam_size must be an int >= 1, got {beam_size!r}")
        from steerrec.decoding import PrefixTrie

        self.run = run
        self.beam_size = beam_size
        self.steering = steerer.cfg if steerer else steering or SteeringConfig()
        texts = run.texts or [run.titles[i] or i for i in run.item_ids]
        self.steerer = steerer or (Steerer(texts, self.steering) if self.steering.enabled else None)
        self.id_texts: list[str] | None = None
        if hasattr(run.model, "item_trie"):  # IDGenRec: variable-length textual IDs
            self.trie = run.model.item_trie(run.codes)
            self.id_texts = [run.model.tokenizer.decode([t for t in row if t >= 0]) for row in run.codes.tolist()]
        else:
            vocab = run.model.vocab
            self.item_tokens = vocab.encode_items(run.codes)  # [n_items, L]
            self.trie = PrefixTrie.from_codes(run.codes, vocab.offsets, vocab.size)
        self.row = {item: i for i, item in enumerate(run.item_ids)}
        self._catalog = list(run.titles)
        self._lower = [f"{run.titles[i]}\n{i}".lower() for i in self._catalog]

    @classmethod
    def from_run(
        cls,
        directory: str | Path,
        beam_size: int = BEAM_SIZE,
        device: str = "cpu",
        steering: SteeringConfig | None = None,
    ) -> Recommender:
        run = load_run(directory)
        run.model.to(device)
        return cls(run, beam_size, steering)

    @property
    def model_name(self) -> str:
        return self.run.model_name

    @property
    def n_items(self) -> int:
        return len(self.run.item_ids)

    def resolve(self, request: RecommendRequest) -> Query:
        """Check a request against the catalog and users; RequestError / UnknownUserError name the culprit."""
        if request.k > self.beam_size:
            raise RequestError(("k",), f"k={request.k} exceeds this service's beam size {self.beam_size}")
        if request.user_id is not None:
            seen = [item.item_id for item in self.user_history(request.user_id).history]
            ids = seen[-MAX_HISTORY:]
        else:
            ids = list(request.history or [])
            for pos, item in enumerate(ids):
                if item not in self.run.titles:
                    raise RequestError(("history", pos), f"unknown item id {item!r} in history[{pos}]")
            seen = ids
        exclude = frozenset(self.row[i] for i in seen if i in self.row) if request.exclude_history else frozenset()
        readings = tuple(self.steerer.read(request.preferences)) if self.steerer and request.preferences else ()
        return Query(tuple(ids), tuple(request.preferences), request.k, exclude, readings)

    def recommend(self, requests: Sequence[RecommendRequest]) -> list[RecommendResponse]:
        """One response per request, all from one batched beam search."""
        return self.recommend_queries([self.resolve(r) for r in requests])

    def recommend_queries(self, queries: Sequence[Query]) -> list[RecommendResponse]:
        if not queries:
            return []
        start = time.perf_counter()
        rows, scores = self._search(queries)
        latency = (time.perf_counter() - start) * 1000
        out = []
        for query, item_rows, item_scores in zip(queries, rows.tolist(), scores.tolist()):
            kept = [(r, s) for r, s in zip(item_rows, item_scores) if r >= 0 and s != float("-inf")][: query.k]
            ids, texts = self.run.item_ids, self.id_texts
            items = [
                ScoredItem(item_id=ids[r], title=self.run.titles[ids[r]], score=s, id_text=texts[r] if texts else None)
                for r, s in kept
            ]
            steering = [
                SteeringReading(text=r.text, reading=r.polarity, p_avoid=round(r.p_avoid, 4), items=r.n_items)
                for r in query.readings
            ]
            out.append(RecommendResponse(items=items, model=self.model_name, latency_ms=latency, steering=steering))
        return out

    def _search(self, queries: Sequence[Query]):
        import torch

        from steerrec.decoding import constrained_beam_search

        model = self.run.model
        bias = item_bias([q.readings for q in queries], [q.exclude for q in queries], self.n_items, self.steering)
        with torch.inference_mode():
            if self.id_texts is not None:  # IDGenRec: its recommender's search, under the same trie and biases
                device = next(model.parameters()).device
                bias = None if bias is None else torch.from_numpy(bias).to(device)
                trie = self.trie.to(device)
                return model.recommend(self._model_batch(queries), trie, self.beam_size, self.beam_size, bias)
            state = model.encode(self._model_batch(queries))
            memory = state["memory"]
            return constrained_beam_search(
                model.step_fn,
                memory.shape[0],
                self.trie,
                self.beam_size,
                self.beam_size,
                start_tokens=model.start_tokens,
                state=state,
                reorder=model.reorder,
                device=memory.device,
                item_bias=None if bias is None else torch.from_numpy(bias).to(memory.device),
            )

    def _model_batch(self, queries: Sequence[Query]) -> dict[str, Any]:
        import torch

        cfg = self.run.model.config
        if self.model_name == "mender_tok":
            from steerrec.models.mender import format_text

            titles = self.run.titles
            return {
                "text": [format_text(q.preferences, [titles[i] for i in q.history], cfg.max_history) for q in queries]
            }
        # tiger and idgenrec read the IDs of the history and ignore preferences
        rows = [[self.row[i] for i in q.history if i in self.row] for q in queries]
        if self.id_texts is not None:
            codes = self.run.codes
            return self.run.model.prompt_batch([[[t for t in codes[r] if t >= 0] for r in row] for row in rows])
        history = self.run.model.vocab.encode_history(rows, self.item_tokens, cfg.max_history)
        return {"history": torch.from_numpy(history).to(next(self.run.model.parameters()).device)}

    def search_items(self, query: str, limit: int = 10) -> list[Item]:
        """Catalog items whose title or id contains `query` (case-insensitive); title prefixes first."""
        q = query.strip().lower()
        hits = [(not text.startswith(q), pos) for pos, text in enumerate(self._lower) if q in text]
        hits.sort()
        titles = self.run.titles
        return [Item(item_id=self._catalog[pos], title=titles[self._catalog[pos]]) for _, pos in hits[:limit]]

    def user_history(self, user_id: str) -> UserHistory:
        histories = self.run.histories or {}
        if user_id not in histories:
            raise UnknownUserError(user_id)
        titles = self.run.titles
        return UserHistory(
            user_id=user_id, history=[Item(item_id=i, title=titles.get(i, "")) for i in histories[user_id]]
        )

    def users(self, prefix: str = "", limit: int = 20) -> list[str]:
        """Known user ids starting with `prefix`, sorted."""
        return sorted(u for u in (self.run.histories or {}) if u.startswith(prefix))[:limit]
