"""IDGenRec training on the one loop: generator pre-training, then alternate rounds (Sec. 2.5).

    summary, best_weights = train_idgenrec(data, IDGenRecTrainConfig(), out="runs/idgenrec/phases")

Phases, each one `fit_local` run of `IDGenRecTask` (steerrec.train.loop) in its own
checkpoint folder under `out`, so a rerun resumes inside the phase it stopped in and skips
finished ones:

1. `pretrain`: no pre-trained tag-generation T5 ships offline (the paper starts from one,
   Sec. 2.6), so the generator first learns item text -> the title's first tokens here;
   then the first IDs (round 0) come from it by Algorithm 1.
2. each round r: `id` (generator, recommender frozen, loss through soft IDs; 1 epoch at
   lr 1e-8 in the paper), IDs recomputed with Algorithm 1, then `rec` (recommender,
   generator frozen; 10 epochs at lr 1e-3), validated by trie-constrained beam search.
   AdamW's step is about lr whatever the gradient's scale, so at lr 1e-8 the generator,
   and so the IDs, barely move in a round.

`strategy` picks Table 5's ablation: `alternate` (the above: the reference code's
`id_first`), `id_only` (rounds of the `id` phase and new IDs, no `rec` phase), `rec_only`
(one `rec` phase of rounds x rec_epochs epochs on the round-0 IDs); `alternate_rec_first`
trains the generator between recommender phases (rec, id + new IDs, rec, ...; the last
round has no `id` phase, so the final recommender reads the IDs it was trained on): without
a pre-trained recommender, round 1's `id` phase of `alternate` trains against a random one.

The IDs of each round are kept in `ids_<round>.json` (token ids and text); the summary
holds every phase's loop summary and the ID reports. With `scaling` each phase runs on Ray
Train (`fit_ray`, storage `out/ray/<phase>`): the data and the starting weights go through
the object store, the IDs and the tokenizer in the loop's config; the IDs are computed
between phases in this process; a phase's best weights are copied to `<phase>/best.safetensors`.
A rerun resumes each phase from Ray's storage (a finished one trains nothing).
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from steerrec.ids.textual import DiverseIdConfig, IdReport, assign_unique_ids
from steerrec.models.idgenrec import IDGenRecConfig
from steerrec.models.idgenrec_text import TOKENIZER_FILE
from steerrec.run_folder import write_json
from steerrec.train import idgenrec_batches as IB
from steerrec.train.loop import BEST, LoopConfig, RayScaling, fit_local

logger = logging.getLogger(__name__)

PHASES = ("pretrain", "id", "rec")
PARTS = {"pretrain": "generator", "id": "soft", "rec": "recommender"}  # IDGenRec.forward's loss per phase
# Training strategies: both T5s in turn (generator first, as the reference code; or recommender
# first), and Table 5's ablations: the generator only (the recommender keeps its initial
# weights), the recommender only (on the pre-trained generator's IDs, for all rounds' epochs)
STRATEGIES = ("alternate", "alternate_rec_first", "id_only", "rec_only")


@dataclass
class IDGenRecTrainConfig:
    model: IDGenRecConfig = field(default_factory=IDGenRecConfig)
    ids: DiverseIdConfig = field(default_factory=DiverseIdConfig)
    tokenizer_vocab: int = 8000
    title_tokens: int = 9  # pre-training target: the title's first tokens (the first ID window's longest)
    rounds: int = 3  # alternate rounds (Sec. 3.2)
    strategy: str = "alternate"  # or alternate_rec_first, the ablations id_only, rec_only (STRATEGIES)
    # A generator built from config needs its pre-training run to convergence (early stopping
    # on valid loss ends it): after a few epochs it writes IDs like 'aaaaaaaa' (README).
    pretrain_epochs: int = 60
    id_epochs: int = 1
    rec_epochs: int = 10
    pretrain_lr: float = 3e-3
    id_lr: float = 1e-8  # the paper's generator learning rate
    rec_lr: float = 1e-3  # the paper's recommender learning rate
    beam_size: int = 20
    max_valid: int = 512  # validation examples; 0 = all
    # batch size, seed, threads, schedule...; each phase sets its own epochs, lr and monitor
    # (rec: valid ndcg@10, higher; pretrain and id: valid loss, lower)
    loop: LoopConfig = field(default_factory=LoopConfig)

    def __post_init__(self) -> None:
        for name in ("rounds", "id_epochs", "rec_epochs", "title_tokens"):
            if getattr(self, name) < 1:
                raise ValueError(f"idgenrec.{name} must be >= 1, got {getattr(self, name)}")
        if self.strategy not in STRATEGIES:
            raise ValueError(f"idgenrec.strategy must be one of {STRATEGIES}, got {self.strategy!r}")
        if self.pretrain_epochs < 0 or self.beam_size < 10 or self.max_valid < 0:
            raise ValueError("idgenrec.pretrain_epochs and max_valid must be >= 0, beam_size >= 10")


class IDGenRecTask:
    """steerrec.train.loop.Task for one phase; the other T5 is frozen (requires_grad False)."""

    def __init__(self, data: IB.IDGenRecData, tokenizer: Any, cfg: IDGenRecTrainConfig, phase: str, ids, weights):
        if phase not in PHASES:
            raise ValueError(f"phase must be one of {PHASES}, got {phase!r}")
        self.data, self.tok, self.cfg, self.phase = data, tokenizer, cfg, phase
        self.ids, self.weights = ids, weights  # current IDs (None while pre-training), starting weights
        from steerrec.models.idgenrec_text import text_tokens

        self.text_tokens = text_tokens(tokenizer, data.texts, cfg.model.max_text_tokens)
        titles = tokenizer(data.titles, add_special_tokens=False)["input_ids"]
        self.title_tokens = [t[: cfg.title_tokens] or [2] for t in titles]
        valid = np.arange(len(data.valid))
        if cfg.max_valid and len(valid) > cfg.max_valid:
            valid = np.sort(np.random.default_rng(cfg.loop.seed).choice(valid, cfg.max_valid, replace=False))
        self.valid_rows = valid
        self.trie = None

    def build_model(self) -> Any:
        from safetensors.torch import load_model

        from steerrec.decoding import PrefixTrie
        from steerrec.models.idgenrec import IDGenRec
        from steerrec.models.idgenrec_text import EOS_ID, PAD_ID

        model = IDGenRec(self.cfg.model)
        if self.weights is not None:
            load_model(model, str(self.weights))
        model.recommender.requires_grad_(self.phase == "rec")
        model.generator.requires_grad_(self.phase != "rec")
        if self.ids is not None:
            self.trie = PrefixTrie.from_sequences(self.ids, self.cfg.model.vocab_size, EOS_ID, PAD_ID)
        return model

    def _n(self) -> int:
        return len(self.data.item_ids) if self.phase == "pretrain" else len(self.data.train)

    def steps_per_epoch(self, world_size: int) -> int:
        return len(IB.batch_rows(self._n(), self.cfg.loop.batch_size, False, 0, 0, world_size))

    def train_batches(self, epoch: int, rank: int, world_size: int):
        seed = self.cfg.loop.seed * 100_003 + epoch
        for rows in IB.batch_rows(self._n(), self.cfg.loop.batch_size, True, seed, rank, world_size):
            yield self._batch(rows, IB.templates_for(len(rows), seed + int(rows[0])))

    def _batch(self, rows: np.ndarray, templates: np.ndarray) -> dict[str, Any]:
        if self.phase == "pretrain":
            return IB.title_batch(self.text_tokens, self.title_tokens, rows)
        soft = self.text_tokens if self.phase == "id" else None
        split = self.data.train
        return IB.rec_batch(self.tok, split, self.ids, rows, templates, self.cfg.model.max_prompt_tokens, soft)

    def loss(self, model: Any, batch: dict[str, Any]) -> Any:
        from steerrec.train.ranking import to_device

        batch = to_device(batch, next(model.parameters()).device)
        return model(batch, PARTS[self.phase])  # through forward, so that DDP syncs the gradients

    def validate(self, model: Any, rank: int, world_size: int) -> dict[str, float]:
        """Sums over this rank's valid examples: recall/NDCG@5,10 of trie-constrained
        recommendation (`rec`), the loss this phase minimises (`pretrain`: the title loss
        over the items; `id`: the soft-ID loss; IDs change only when recomputed)."""
        from steerrec.train.ranking import hit_sums, to_device

        device = next(model.parameters()).device
        n = len(self.data.item_ids) if self.phase == "pretrain" else len(self.valid_rows)
        mine = np.arange(n)[rank::world_size]
        size = self.cfg.loop.batch_size
        batches = [mine[start : start + size] for start in range(0, len(mine), size)]
        if self.phase != "rec":
            total = 0.0
            for rows in batches:
                if self.phase == "pretrain":
                    batch = IB.title_batch(self.text_tokens, self.title_tokens, rows)
                    total += float(model.generator(to_device(batch, device))) * len(rows)
                else:
                    batch = self._valid_batch(self.valid_rows[rows], self.text_tokens)
                    total += float(model.soft_loss(to_device(batch, device))) * len(rows)
            return {"loss": total, "count": float(len(mine))}
        ranked, targets = [], []
        for rows in batches:
            batch = self._valid_batch(self.valid_rows[rows])
            items, _ = model.recommend(to_device(batch, device), self.trie.to(device), self.cfg.beam_size, 10)
            ranked.append(items.cpu().numpy())
            targets.append(self.data.valid.targets[self.valid_rows[rows]])
        if not ranked:
            return hit_sums(np.zeros((0, 10), dtype=np.int64), np.zeros(0, dtype=np.int64))
        return hit_sums(np.concatenate(ranked), np.concatenate(targets))

    def _valid_batch(self, rows: np.ndarray, text_tokens=None) -> dict[str, Any]:
        templates = IB.templates_for(len(rows), 0, fixed=0)  # evaluation: the first template
        max_tokens = self.cfg.model.max_prompt_tokens
        return IB.rec_batch(self.tok, self.data.valid, self.ids, rows, templates, max_tokens, text_tokens)


def compute_ids(model: Any, tokenizer: Any, data: IB.IDGenRecData, cfg: IDGenRecTrainConfig):
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


def run_tokenizer(data: IB.IDGenRecData, cfg: IDGenRecTrainConfig, out: Path) -> Any:
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


def train_idgenrec(
    data: IB.IDGenRecData, cfg: IDGenRecTrainConfig, out: str | Path, report=None, scaling: RayScaling | None = None
) -> tuple[dict[str, Any], Path]:
    """Pre-train the generator, then `cfg.rounds` alternate rounds: (summary, best weights);
    each phase on Ray Train with `scaling`, else in this process.

    The summary has each phase's loop summary, each round's ID report and first ten IDs, and
    `final`: the round whose IDs go with the weights and the recommender phase that trained
    them (None for id_only: its recommender keeps its initial weights)."""
    from dataclasses import replace

    from steerrec.models.idgenrec import IDGenRec

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = run_tokenizer(data, cfg, out)
    cfg = replace(cfg, model=replace(cfg.model, vocab_size=len(tokenizer)))
    summary: dict[str, Any] = {"phases": {}, "ids": {}, "examples": {}}
    weights: Path | None = None

    def run_phase(phase: str, tag: str, ids, epochs: int, lr: float) -> Path:
        monitor, mode = ("ndcg@10", "max") if phase == "rec" else ("loss", "min")
        loop = replace(cfg.loop, epochs=epochs, lr=lr, monitor=monitor, mode=mode)
        task = IDGenRecTask(data, tokenizer, cfg, phase, ids, weights)
        if scaling is None:
            summary["phases"][tag], checkpoint = fit_local(task, loop, out / tag, report)
            return checkpoint / BEST
        from steerrec.train.idgenrec_ray import fit_phase_ray

        summary["phases"][tag], checkpoint = fit_phase_ray(task, loop, scaling, out, tag, out / TOKENIZER_FILE)
        (out / tag).mkdir(parents=True, exist_ok=True)
        shutil.copy(checkpoint / BEST, out / tag / BEST)  # Ray's copy may be a temporary folder
        return out / tag / BEST

    def ids_of_round(r: int):
        path = out / f"ids_{r}.json"
        if path.is_file():
            ids, found = load_ids(path)
        else:
            model = IDGenRec(cfg.model)
            if weights is not None:
                from safetensors.torch import load_model

                load_model(model, str(weights))
            ids, id_report = compute_ids(model, tokenizer, data, cfg)
            save_ids(path, ids, id_report, tokenizer, data)
            found = id_report.summary()
        summary["ids"][r] = found
        summary["examples"][r] = [tokenizer.decode(list(t)) for t in ids[:10]]
        return ids

    if cfg.pretrain_epochs:
        weights = run_phase("pretrain", "pretrain", None, cfg.pretrain_epochs, cfg.pretrain_lr)
    ids = ids_of_round(0)
    if cfg.strategy == "rec_only":
        summary["final"] = {"ids": 0, "rec": "rec_only"}
        return summary, run_phase("rec", "rec_only", ids, cfg.rounds * cfg.rec_epochs, cfg.rec_lr)
    if cfg.strategy == "alternate_rec_first":
        for r in range(1, cfg.rounds + 1):
            weights = run_phase("rec", f"round{r}_rec", ids, cfg.rec_epochs, cfg.rec_lr)
            if r < cfg.rounds:
                weights = run_phase("id", f"round{r}_id", ids, cfg.id_epochs, cfg.id_lr)
                ids = ids_of_round(r)
        summary["final"] = {"ids": cfg.rounds - 1, "rec": f"round{cfg.rounds}_rec"}
        return summary, weights
    for r in range(1, cfg.rounds + 1):
        weights = run_phase("id", f"round{r}_id", ids, cfg.id_epochs, cfg.id_lr)
        ids = ids_of_round(r)
        if cfg.strategy == "alternate":
            weights = run_phase("rec", f"round{r}_rec", ids, cfg.rec_epochs, cfg.rec_lr)
    summary["final"] = {"ids": cfg.rounds, "rec": f"round{cfg.rounds}_rec" if cfg.strategy == "alternate" else None}
    return summary, weights
