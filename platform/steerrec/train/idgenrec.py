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

`strategy` picks Table 5's ablation (`phase_plan` lists each one's phases): `alternate`
(the above: the reference code's `id_first`), `id_only` (rounds of the `id` phase and new
IDs, no `rec` phase), `rec_only` (one `rec` phase of rounds x rec_epochs epochs on the
round-0 IDs); `alternate_rec_first` trains the generator between recommender phases (rec,
id + new IDs, rec, ...; the last round has no `id` phase, so the final recommender reads
the IDs it was trained on): without a pre-trained recommender, round 1's `id` phase of
`alternate` trains against a random one. As in the reference code, each T5 has one AdamW
and one schedule across the rounds (`continue_optimizer`): a round's phase starts from the
optimizer state its previous round's phase ended with (the weights are that phase's best).

The IDs of each round are kept in `ids_<round>.json` (token ids and text); the summary
holds every phase's loop summary and the ID reports. With `scaling` each phase runs on Ray
Train (`fit_ray`, storage `out/ray/<phase>`): the data and the starting weights go through
the object store, the IDs and the tokenizer in the loop's config; the IDs are computed
between phases in this process; a phase's best weights (and, with `continue_optimizer`, its
last optimizer state) are copied to `<phase>/`.
A rerun resumes each phase from Ray's storage (a finished one trains nothing).
"""

from __future__ import annotations

import functools
import logging
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from steerrec.train import idgenrec_batches as IB
from steerrec.train.idgenrec_ids import compute_ids, ids_file, load_ids, run_tokenizer, save_ids
from steerrec.train.idgenrec_plan import STRATEGIES, IDGenRecTrainConfig, Phase, phase_plan
from steerrec.train.loop import BEST, OPTIM, OPTIM_META, RayScaling, epoch_steps, fit_local

logger = logging.getLogger(__name__)

__all__ = ["PHASES", "STRATEGIES", "IDGenRecTask", "IDGenRecTrainConfig", "Phase", "phase_plan", "train_idgenrec"]

PHASES = ("pretrain", "id", "rec")
PARTS = {"pretrain": "generator", "id": "soft", "rec": "recommender"}  # IDGenRec.forward's loss per phase


class IDGenRecTask:
    """steerrec.train.loop.Task for one phase; the other T5 is frozen (requires_grad False)."""

    def __init__(
        self, data: IB.IDGenRecData, tokenizer: Any, cfg: IDGenRecTrainConfig, phase: str, ids, weights, optimizer=None
    ):
        if phase not in PHASES:
            raise ValueError(f"phase must be one of {PHASES}, got {phase!r}")
        self.data, self.tok, self.cfg, self.phase = data, tokenizer, cfg, phase
        self.ids, self.weights = ids, weights  # current IDs (None while pre-training), starting weights
        self.optimizer = optimizer  # a folder with the optimizer state to continue, or None
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

    def start_optimizer(self) -> Path | None:
        return self.optimizer

    def _n(self) -> int:
        return len(self.data.item_ids) if self.phase == "pretrain" else len(self.data.train)

    def steps_per_epoch(self, world_size: int) -> int:
        return len(IB.batch_rows(self._n(), self.cfg.loop.batch_size, False, 0, 0, world_size))

    def train_batches(self, epoch: int, rank: int, world_size: int):
        seed = self.cfg.loop.seed * 100_003 + epoch
        lengths = self._lengths if self.cfg.length_buckets > 1 else None
        batches = IB.batch_rows(
            self._n(), self.cfg.loop.batch_size, True, seed, rank, world_size, lengths, self.cfg.length_buckets
        )
        for rows in batches:  # shuffled: the loop's max_batches takes the first ones, a random sample
            yield self._batch(rows, IB.templates_for(len(rows), seed + int(rows[0])))

    @functools.cached_property
    def _lengths(self) -> np.ndarray:
        """Each training example's length in tokens: item text (pretrain) or history IDs (fixed in a phase)."""
        if self.phase == "pretrain":
            return np.fromiter(map(len, self.text_tokens), dtype=np.int64, count=len(self.text_tokens))
        return IB.example_lengths(self.data.train, self.ids)

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


def train_idgenrec(
    data: IB.IDGenRecData, cfg: IDGenRecTrainConfig, out: str | Path, report=None, scaling: RayScaling | None = None
) -> tuple[dict[str, Any], Path]:
    """Pre-train the generator, then the phases of `phase_plan`: (summary, last weights);
    each phase on Ray Train with `scaling`, else in this process.

    Each phase starts from the previous phase's best weights. With `continue_optimizer`
    (the reference code: one AdamW and one schedule per T5 across the rounds) a phase also
    starts from the optimizer state where the last phase of its kind ended, and its
    schedule runs from that phase's last step over all the plan's phases of its kind.
    The summary has each phase's loop summary, each round's ID report and first ten IDs,
    and `final` (phase_plan)."""
    from dataclasses import replace

    from steerrec.models.idgenrec import IDGenRec

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = run_tokenizer(data, cfg, out)
    cfg = replace(cfg, model=replace(cfg.model, vocab_size=len(tokenizer)))
    plan, final = phase_plan(cfg)
    summary: dict[str, Any] = {"phases": {}, "ids": {}, "examples": {}}
    weights: Path | None = None
    world = scaling.num_workers if scaling is not None else 1
    last: dict[str, tuple[int, Path]] = {}  # kind -> (its last phase's step count, its optimizer folder)

    def run_phase(phase: Phase, ids) -> Path:
        lr = {"pretrain": cfg.pretrain_lr, "id": cfg.id_lr, "rec": cfg.rec_lr}[phase.kind]
        monitor, mode = ("ndcg@10", "max") if phase.kind == "rec" else ("loss", "min")
        loop = replace(cfg.loop, epochs=phase.epochs, lr=lr, monitor=monitor, mode=mode)
        if phase.kind == "id" and cfg.id_max_batches:
            loop = replace(loop, max_batches=cfg.id_max_batches)
        start = last.get(phase.kind) if cfg.continue_optimizer else None
        task = IDGenRecTask(data, tokenizer, cfg, phase.kind, ids, weights, start[1] if start else None)
        if cfg.continue_optimizer and phase.kind != "pretrain":
            total = epoch_steps(task, loop, world) * sum(p.epochs for p in plan if p.kind == phase.kind)
            loop = replace(loop, start_step=start[0] if start else 0, total_steps=total)
        if scaling is None:
            summary["phases"][phase.tag], checkpoint = fit_local(task, loop, out / phase.tag, report)
        else:
            from steerrec.train.idgenrec_ray import fit_phase_ray

            summary["phases"][phase.tag], checkpoint = fit_phase_ray(task, loop, scaling, out, phase.tag)
            (out / phase.tag).mkdir(parents=True, exist_ok=True)
            keep = (BEST, OPTIM, OPTIM_META) if cfg.continue_optimizer else (BEST,)
            for name in keep:  # Ray's copy may be a temporary folder
                shutil.copy(checkpoint / name, out / phase.tag / name)
            checkpoint = out / phase.tag
        last[phase.kind] = (summary["phases"][phase.tag]["history"][-1]["step"], checkpoint)
        return checkpoint / BEST

    def ids_of_round(r: int):
        path = ids_file(out, r)
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
        weights = run_phase(Phase("pretrain", "pretrain", cfg.pretrain_epochs), None)
    ids = ids_of_round(0)
    for phase in plan:
        weights = run_phase(phase, ids)
        if phase.new_ids is not None:
            ids = ids_of_round(phase.new_ids)
    summary["final"] = final
    return summary, weights
