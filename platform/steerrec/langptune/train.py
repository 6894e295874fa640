"""LangPTune's alternation (Algorithm 1), resumable per outer iteration: in one process, or
inside the Ray program's trainer actor (ray_program.py) with its generator group as the
`ProfileWriter` that writes the embedder phase's profiles.

    cfg = load(LangPTuneConfig, None, ["data=/abs/world", "out=/abs/runs/lpt", "outer_iterations=2"])
    summary = train_langptune(cfg)          # then evaluate_langptune(cfg, ...) for the test table

K outer iterations: (1) with the embedder phase on, the current policy writes one profile
per training session (a fresh sample of `cl_sessions` each iteration; EMB-CL: the history text) and InfoNCE trains
the embedder on (query, upcoming item) pairs; (2) with the policy phase on, RLSO trains the
policy's LoRA for T iterations (`policy_loop.epochs`) against the new embedder. Both phases
run through steerrec.train.loop (fit_local), each with its own checkpoints under
<out>/iter_NN/, so an interrupted phase resumes from its last epoch. A finished iteration
leaves adapter.safetensors / embedder.safetensors and done.json; a rerun starts after the
last iteration with done.json, from its weights, so nothing finished is lost.
The variants of the paper's tables are which phases run and what the query is (VARIANTS).
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from steerrec.langptune.config import EmbedderPhaseConfig, PolicyPhaseConfig, RayProgramConfig
from steerrec.langptune.embedder import Catalog, embed_frozen, load_trainable
from steerrec.langptune.sessions import Session, SessionConfig, history_text, load_sessions, profile_messages
from steerrec.run_folder import write_json
from steerrec.train.loop import LoopConfig, fit_local, load_weights, save_weights

logger = logging.getLogger(__name__)
Generate = Callable[[list[dict[str, Any]], int], list[dict[str, Any]]]  # (rows, seed) -> rows + generations

# variant -> (query, train the embedder, train the policy)
VARIANTS = {
    "langptune": ("profile", True, True),
    "langptune_cl": ("profile", True, False),
    "langptune_rlso": ("profile", False, True),
    "langptune_0": ("profile", False, False),
    "emb_cl": ("history", True, False),
    "emb_0": ("history", False, False),
}
ADAPTER, EMBEDDER, DONE, PAIRS, TOKENIZER = (
    "adapter.safetensors",
    "embedder.safetensors",
    "done.json",
    "pairs.json",
    "tokenizer",
)


@dataclass
class PolicyLoopConfig(LoopConfig):
    """The loop of the policy phase: epochs = T iterations; LoRA-only checkpoints.

    Its own class, not a default_factory: a config that overrides one key of a nested
    section is built from the section class's defaults (steerrec.config.from_dict)."""

    epochs: int = 4
    lr: float = 1e-4
    weight_decay: float = 1e-6
    monitor: str = ""  # the policy's validation (policy.max_valid) is reported, not monitored
    trainable_only: bool = True
    progress: bool = False


@dataclass
class EmbedderLoopConfig(LoopConfig):
    """The loop of the embedder phase (batches per epoch: max_batches, the paper's J)."""

    epochs: int = 1
    lr: float = 1e-5
    weight_decay: float = 1e-6
    monitor: str = ""
    progress: bool = False


@dataclass
class LangPTuneConfig:
    data: str = ""  # a dataset folder (jobs/prepare_data.py)
    out: str = ""  # the run folder
    variant: str = "langptune"  # a key of VARIANTS
    outer_iterations: int = 1  # K
    cl_sessions: int = 64  # training sessions profiled for each embedder phase; 0 = all
    max_train_sessions: int = 0  # 0 = all
    profile_cache: str = ""  # folder of greedy test profiles shared by runs (evaluate.py); "" = none
    sessions: SessionConfig = field(default_factory=SessionConfig)
    policy: PolicyPhaseConfig = field(default_factory=PolicyPhaseConfig)
    embedder_phase: EmbedderPhaseConfig = field(default_factory=EmbedderPhaseConfig)
    policy_loop: PolicyLoopConfig = field(default_factory=PolicyLoopConfig)
    embedder_loop: EmbedderLoopConfig = field(default_factory=EmbedderLoopConfig)
    ray: RayProgramConfig = field(default_factory=RayProgramConfig)  # the Ray program's actors
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.data or not self.out:
            raise ValueError(f"data and out are required, got data={self.data!r} out={self.out!r}")
        if self.variant not in VARIANTS:
            raise ValueError(f"variant must be one of {sorted(VARIANTS)}, got {self.variant!r}")
        for name in ("outer_iterations", "cl_sessions", "max_train_sessions"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.ray.engine == "vllm":
            _check_vllm(self)

    @property
    def query(self) -> str:
        return VARIANTS[self.variant][0]


def _check_vllm(cfg: LangPTuneConfig) -> None:
    model, rank = cfg.policy.model, cfg.ray.vllm.max_lora_rank
    if model.source != "hf":
        raise ValueError(f"ray.engine=vllm needs policy.model.source=hf, got {model.source!r}")
    if rank < model.lora_r:
        raise ValueError(f"ray.vllm.max_lora_rank must be >= policy.model.lora_r={model.lora_r}, got {rank}")


class LangPTune:
    """The models and data of one run, loaded once: sessions by split, the catalog, the
    policy (with its tokenizer) when the variant writes profiles, and the embedder."""

    def __init__(self, cfg: LangPTuneConfig) -> None:
        self.cfg, self.out = cfg, Path(cfg.out)
        sessions, items = load_sessions(cfg.data, cfg.sessions)
        self.splits: dict[str, list[Session]] = {s: [x for x in sessions if x.split == s] for s in cfg.sessions.splits}
        if cfg.max_train_sessions and "train" in self.splits:
            self.splits["train"] = self.splits["train"][: cfg.max_train_sessions]
        self.catalog = Catalog.from_items(items, cfg.sessions.max_item_chars)
        self.policy, self.tokenizer = self._policy() if cfg.query == "profile" else (None, None)
        self.embedder = load_trainable(cfg.embedder_phase.embedder)

    def messages(self, s: Session) -> list[dict[str, str]]:
        return profile_messages(s, self.catalog.text_of, self.cfg.sessions)

    def _policy(self) -> tuple[Any, Any]:
        def texts() -> list[str]:
            return [m["content"] for ss in self.splits.values() for s in ss for m in self.messages(s)] + list(
                self.catalog.texts
            )

        return load_policy(self.cfg.policy.model, self.out, self.cfg.seed, texts)

    def restore(self, directory: Path) -> None:
        """Load a finished iteration's adapter and embedder (those it has)."""
        if (directory / ADAPTER).is_file() and self.policy is not None:
            load_weights(self.policy, directory / ADAPTER, trainable_only=True)
        if (directory / EMBEDDER).is_file():
            load_weights(self.embedder, directory / EMBEDDER)

    def queries(self, sessions: list[Session], seed: int, generate: Generate | None = None) -> list[str]:
        """One sampled profile per session from the current policy (written by `generate`,
        default: in this process), or the history text."""
        if self.cfg.query == "history":
            return [history_text(s, self.catalog.text_of) for s in sessions]
        from steerrec.langptune.rollouts import generate_in_process, profile_requests, read_profiles

        rows = profile_requests(sessions, self.messages, self.cfg.policy.rollout, seed, samples=1, seeded=False)
        if generate is None:
            return [p.text for p in read_profiles(generate_in_process(self.policy, self.tokenizer, rows, seed=seed))]
        return [p.text for p in read_profiles(generate(rows, seed))]


def load_policy(model_cfg: Any, out: Path, seed: int, texts: Callable[[], list[str]] | None = None) -> tuple[Any, Any]:
    """(base policy + a fresh LoRA, tokenizer). A tiny policy's BPE is trained on `texts()`
    once and kept under <out>/tokenizer, so a resumed run and a generator actor see the same."""
    from steerrec.alignment.model import add_lora, build_tiny, build_tokenizer, load_pretrained

    tok_dir = Path(out) / TOKENIZER
    if model_cfg.source == "tiny":
        if tok_dir.is_dir():
            from transformers import AutoTokenizer

            tok = AutoTokenizer.from_pretrained(str(tok_dir))
        elif texts is None:
            raise FileNotFoundError(f"{tok_dir}: no tokenizer for the tiny policy (the trainer writes it first)")
        else:
            tok = build_tokenizer(texts(), model_cfg.vocab_size)
            tok.save_pretrained(str(tok_dir))
        model = build_tiny(model_cfg, tok, seed)
    else:
        model, tok = load_pretrained(model_cfg)
    import torch

    torch.manual_seed(seed)  # the LoRA's init: one seed, one adapter, in any process
    return add_lora(model, model_cfg), tok


class ProfileWriter(Protocol):
    """Who writes the embedder phase's profiles: `sync` hands the trainer's current policy
    (its adapter) over and returns what that cost ({} when nothing moves); `generate` takes
    engine rows and a seed and returns them with generations."""

    def sync(self, policy: Any) -> dict[str, Any]: ...

    def generate(self, rows: list[dict[str, Any]], seed: int) -> list[dict[str, Any]]: ...


def train_langptune(
    cfg: LangPTuneConfig, writer: ProfileWriter | None = None, run: LangPTune | None = None
) -> dict[str, Any]:
    """Run (or resume) the K outer iterations; returns {"iterations": [done.json rows], "run": LangPTune}.

    writer: where the embedder phase's profiles are written (default: in this process, on
    the policy itself). It is synced once before the first iteration and after each policy
    phase; what a sync cost goes into the summary ("handover_start") and that iteration's
    done.json ("handover")."""
    run = run or LangPTune(cfg)
    _, train_emb, train_pol = VARIANTS[cfg.variant]
    done = sorted(p.parent for p in run.out.glob(f"iter_*/{DONE}"))
    rows = [json.loads((d / DONE).read_text()) for d in done]
    for d in done:
        run.restore(d)  # the latest iteration's files win; an earlier one may hold the other model
    if done:
        logger.info("resuming after outer iteration %d", rows[-1]["iteration"])
    todo = range(len(done), cfg.outer_iterations if (train_emb or train_pol) else 0)
    writes = writer is not None and train_emb and cfg.query == "profile"
    summary: dict[str, Any] = {"iterations": rows, "run": run}
    if writes and len(todo):
        summary["handover_start"] = writer.sync(run.policy)
    for k in todo:
        directory = run.out / f"iter_{k:02d}"
        row: dict[str, Any] = {"iteration": k}
        started = time.perf_counter()
        if train_emb:
            row["embedder"] = _embedder_phase(run, k, directory, writer.generate if writes else None)
        if train_pol:
            row["policy"] = _policy_phase(run, k, directory)
            if writes:
                row["handover"] = writer.sync(run.policy)
        row["seconds"] = time.perf_counter() - started
        write_json(directory / DONE, row)
        rows.append(row)
    return summary


def _embedder_phase(run: LangPTune, k: int, directory: Path, generate: Generate | None = None) -> dict[str, Any]:
    from steerrec.langptune.embedder_task import EmbedderTask

    cfg = run.cfg
    pairs_file = directory / PAIRS
    if pairs_file.is_file():
        pairs = json.loads(pairs_file.read_text())
    else:
        started = time.perf_counter()
        pairs = {}
        train = run.splits.get("train", [])  # a new sample of cl_sessions each outer iteration
        order = np.random.default_rng([cfg.seed, k]).permutation(len(train))[: cfg.cl_sessions or None]
        chosen = {
            "train": [train[int(i)] for i in order],
            "valid": run.splits.get("valid", [])[: cfg.embedder_phase.max_valid],
        }
        for split, sessions in chosen.items():
            pairs[split] = [[q, s.target] for q, s in zip(run.queries(sessions, 1000 * k + 1, generate), sessions)]
        logger.info("iteration %d: %d CL queries in %.1f s", k, len(pairs["train"]), time.perf_counter() - started)
        write_json(pairs_file, pairs)
    as_pairs = {s: [(q, item) for q, item in v] for s, v in pairs.items()}
    task = EmbedderTask(cfg.embedder_phase, as_pairs, run.catalog, model=run.embedder)
    summary, ckpt = fit_local(task, cfg.embedder_loop, directory / "embedder_ckpt")
    shutil.copy(ckpt / "model.safetensors", directory / EMBEDDER)
    load_weights(run.embedder, directory / EMBEDDER)
    return summary["history"][-1] if summary["history"] else {}


def _policy_phase(run: LangPTune, k: int, directory: Path) -> dict[str, Any]:
    from steerrec.langptune.policy_task import PolicyTask

    cfg = run.cfg
    items = embed_frozen(run.embedder, run.catalog.texts, cfg.embedder_phase.embedder.batch_size)

    def scorer(texts: list[str]) -> Any:
        return embed_frozen(run.embedder, texts, cfg.embedder_phase.embedder.batch_size)

    task = PolicyTask(
        cfg.policy, run.splits, run.catalog, scorer, items, lambda: (run.policy, run.tokenizer), cfg.sessions, k
    )
    summary, _ = fit_local(task, cfg.policy_loop, directory / "policy_ckpt")
    save_weights(run.policy, directory / ADAPTER, trainable_only=True)
    return summary["history"][-1] if summary["history"] else {}
