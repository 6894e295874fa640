"""IDGenRec's training settings and the phases each strategy trains (Table 5's ablations).

    plan, final = phase_plan(IDGenRecTrainConfig(strategy="alternate_rec_first", rounds=2))
    # [Phase("rec", "round1_rec", 10), Phase("id", "round1_id", 1, new_ids=1), Phase("rec", "round2_rec", 10)]

steerrec.train.idgenrec walks the plan (train_idgenrec); the plan itself is pure.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from steerrec.ids.textual import DiverseIdConfig
from steerrec.models.idgenrec import IDGenRecConfig
from steerrec.train.loop import LoopConfig

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
    # batches per `id` epoch (the id phase's loop.max_batches: a random sample of the epoch's
    # batches); 0 = all, the paper's one epoch. Soft IDs run the generator over every history
    # item of a batch, so an `id` epoch costs many `rec` epochs (over 45 min on Office, 2 cores)
    id_max_batches: int = 0
    # batches of examples of similar prompt length (train.batch_order, as TIGER's
    # train.length_buckets): runs of length_buckets x batch size are sorted by length; 0 = off
    length_buckets: int = 0
    rec_epochs: int = 10
    pretrain_lr: float = 3e-3
    id_lr: float = 1e-8  # the paper's generator learning rate
    rec_lr: float = 1e-3  # the paper's recommender learning rate
    # each round's phase of a T5 continues the AdamW state and the schedule (loop.schedule,
    # over all rounds) where its previous round's phase ended, as the reference code does
    continue_optimizer: bool = True
    beam_size: int = 20
    max_valid: int = 512  # validation examples; 0 = all
    # batch size, seed, threads, schedule...; each phase sets its own epochs, lr and monitor
    # (rec: valid ndcg@10, higher; pretrain and id: valid loss, lower); loop.max_batches caps
    # every phase's epochs, id_max_batches (when set) the id phase's instead
    loop: LoopConfig = field(default_factory=LoopConfig)

    def __post_init__(self) -> None:
        for name in ("rounds", "id_epochs", "rec_epochs", "title_tokens"):
            if getattr(self, name) < 1:
                raise ValueError(f"idgenrec.{name} must be >= 1, got {getattr(self, name)}")
        if self.strategy not in STRATEGIES:
            raise ValueError(f"idgenrec.strategy must be one of {STRATEGIES}, got {self.strategy!r}")
        counts = (self.pretrain_epochs, self.max_valid, self.id_max_batches, self.length_buckets)
        if min(counts) < 0 or self.beam_size < 10:
            raise ValueError(
                "idgenrec.pretrain_epochs, max_valid, id_max_batches and length_buckets must be >= 0, beam_size >= 10"
            )


@dataclass(frozen=True)
class Phase:
    """One step of a strategy's plan: train `kind` ("pretrain", "id" or "rec") for `epochs`
    in the folder `tag`, then, when `new_ids` is set, write that round's IDs (Algorithm 1)."""

    kind: str
    tag: str
    epochs: int
    new_ids: int | None = None


def phase_plan(cfg: IDGenRecTrainConfig) -> tuple[list[Phase], dict[str, Any]]:
    """The phases of `cfg.strategy` in order, after the pre-training and the round-0 IDs,
    and `final`: the round whose IDs go with the last weights and the recommender phase that
    trained them (None for id_only: its recommender keeps its initial weights)."""
    rounds = range(1, cfg.rounds + 1)
    gen = lambda r: Phase("id", f"round{r}_id", cfg.id_epochs, new_ids=r)
    rec = lambda r: Phase("rec", f"round{r}_rec", cfg.rec_epochs)
    if cfg.strategy == "rec_only":
        return [Phase("rec", "rec_only", cfg.rounds * cfg.rec_epochs)], {"ids": 0, "rec": "rec_only"}
    if cfg.strategy == "alternate_rec_first":
        plan = [p for r in rounds for p in ([rec(r), gen(r)] if r < cfg.rounds else [rec(r)])]
        return plan, {"ids": cfg.rounds - 1, "rec": f"round{cfg.rounds}_rec"}
    if cfg.strategy == "id_only":
        return [gen(r) for r in rounds], {"ids": cfg.rounds, "rec": None}
    return [p for r in rounds for p in (gen(r), rec(r))], {"ids": cfg.rounds, "rec": f"round{cfg.rounds}_rec"}
