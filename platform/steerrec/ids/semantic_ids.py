"""Semantic IDs from item embeddings: train an RQ-VAE, assign codes, break collisions.

The pieces are plain functions so that a Ray Train worker can call them one by one:

    model = train_rqvae(embeddings, RQVAEConfig(input_dim=384), report=print_fn)
    codes = add_collision_code(assign_codes(model, embeddings))  # [n, 4], unique rows
    quality_report(model, embeddings, codes)
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

import numpy as np
import pyarrow as pa
import torch
from tqdm.auto import tqdm

from steerrec.data.schema import SEMANTIC_IDS, validate
from steerrec.ids.kmeans import init_codebooks, reseed_dead_codes
from steerrec.ids.rqvae import RQVAE, RQVAEConfig

logger = logging.getLogger(__name__)


def check_embeddings(embeddings: np.ndarray, input_dim: int, source: str = "embeddings") -> np.ndarray:
    """Return embeddings as float32 [n, input_dim], or raise naming the shape or bad row."""
    x = np.asarray(embeddings)
    if x.ndim != 2 or x.shape[0] == 0:
        raise ValueError(f"{source}: expected a non-empty 2-D array [n_items, dim], got shape {x.shape}")
    if x.shape[1] != input_dim:
        raise ValueError(f"{source}: dimension {x.shape[1]} does not match rqvae.input_dim={input_dim}")
    if not np.issubdtype(x.dtype, np.number):
        raise ValueError(f"{source}: expected numbers, got dtype {x.dtype}")
    x = x.astype(np.float32, copy=False)
    bad = np.flatnonzero(~np.isfinite(x).all(axis=1))
    if bad.size:
        raise ValueError(f"{source}: row {int(bad[0])} has a NaN or infinite value ({bad.size} bad row(s) in all)")
    return x


def make_optimizer(model: RQVAE, cfg: RQVAEConfig) -> torch.optim.AdamW:
    """AdamW over every parameter (codebooks included), weight decay as configured."""
    return torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)


def rqvae_train_step(
    model: torch.nn.Module, optimizer: torch.optim.Optimizer, batch: torch.Tensor
) -> tuple[dict[str, float], torch.Tensor]:
    """One optimizer step on raw embeddings batch [B, input_dim].

    Returns the batch's losses and its codes [B, L] (for counting codebook usage).
    `model` may be wrapped (DistributedDataParallel) as long as it returns RQVAEOutput.
    """
    out = model(batch)
    optimizer.zero_grad(set_to_none=True)
    out.loss.backward()
    optimizer.step()
    metrics = {"loss": out.loss.item(), "recon": out.recon_loss.item(), "quant": out.quant_loss.item()}
    return metrics, out.codes.detach()


def count_usage(codes: torch.Tensor, codebook_size: int) -> torch.Tensor:
    """How often each code was chosen: codes [B, L] -> counts [L, K]."""
    counts = torch.zeros(codes.shape[1], codebook_size, dtype=torch.long, device=codes.device)
    return counts.scatter_add_(1, codes.T, torch.ones_like(codes.T))


def _train_epoch(
    model: RQVAE, optimizer: torch.optim.Optimizer, data: torch.Tensor, generator: torch.Generator
) -> tuple[dict[str, float], torch.Tensor]:
    """A shuffled pass over data; returns mean losses and code usage [L, K]."""
    cfg = model.cfg
    model.train()
    order = torch.randperm(data.shape[0], generator=generator).to(data.device)
    usage = torch.zeros(cfg.n_levels, cfg.codebook_size, dtype=torch.long, device=data.device)
    sums: dict[str, float] = {}
    for start in range(0, data.shape[0], cfg.batch_size):
        batch = data[order[start : start + cfg.batch_size]]
        metrics, codes = rqvae_train_step(model, optimizer, batch)
        usage += count_usage(codes, cfg.codebook_size)
        for key, value in metrics.items():
            sums[key] = sums.get(key, 0.0) + value * batch.shape[0]
    return {key: value / data.shape[0] for key, value in sums.items()}, usage


@torch.no_grad()
def _sample_residuals(model: RQVAE, data: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Residuals [N, L, D] of a random batch, encoder in eval mode."""
    pick = torch.randperm(data.shape[0], generator=generator)[: model.cfg.batch_size]
    model.eval()
    residuals = model.quantize(data[pick.to(data.device)]).residuals
    model.train()
    return residuals


def train_rqvae(
    embeddings: np.ndarray,
    cfg: RQVAEConfig,
    report: Callable[[dict], None] | None = None,
    device: str | torch.device = "cpu",
    progress: bool = True,
) -> RQVAE:
    """Train an RQ-VAE on raw item embeddings [n_items, input_dim]; returns it in eval mode.

    Seeds torch's global RNG with cfg.seed (weights, dropout). `report` gets one dict per
    epoch: epoch, loss, recon, quant (means over the epoch), coverage_1..L (share of
    codes chosen during the epoch, dropout on), reseeded_1..L, seconds.
    """
    x = check_embeddings(embeddings, cfg.input_dim)
    torch.manual_seed(cfg.seed)
    generator = torch.Generator().manual_seed(cfg.seed)
    model = RQVAE(cfg).to(device)
    data = torch.from_numpy(x).to(device)
    model.fit_standardizer(data)
    if cfg.kmeans_init:
        first = torch.randperm(data.shape[0], generator=generator)[: cfg.batch_size]
        init_codebooks(model, data[first.to(data.device)], cfg.seed, cfg.kmeans_iters)
    optimizer = make_optimizer(model, cfg)
    for epoch in tqdm(range(cfg.epochs), desc="rq-vae", disable=not progress):
        started = time.perf_counter()
        metrics, usage = _train_epoch(model, optimizer, data, generator)
        moved = [0] * cfg.n_levels
        if cfg.reseed_dead_codes and epoch < cfg.epochs - 1 and bool((usage == 0).any()):
            residuals = _sample_residuals(model, data, generator)
            moved = reseed_dead_codes(model, usage, residuals, generator, optimizer)
        coverage = ((usage > 0).float().mean(1)).tolist()
        row = {
            "epoch": epoch + 1,
            **metrics,
            **{f"coverage_{i + 1}": c for i, c in enumerate(coverage)},
            **{f"reseeded_{i + 1}": m for i, m in enumerate(moved)},
            "seconds": time.perf_counter() - started,
        }
        logger.debug("rq-vae epoch %s", row)
        if report is not None:
            report(row)
    return model.eval()


@torch.no_grad()
def assign_codes(model: RQVAE, embeddings: np.ndarray, batch_size: int = 4096) -> np.ndarray:
    """Codes [n, n_levels] (int64) of raw embeddings, model in eval mode.

    With `model.cfg.last_level == "unique"`, items sharing their first L - 1 codes get
    distinct last codes where the codebook allows (steerrec.ids.uniform).
    """
    x = check_embeddings(embeddings, model.cfg.input_dim)
    model.eval()
    device = model.codebooks.device
    parts = [
        model.quantize(torch.from_numpy(x[i : i + batch_size]).to(device)) for i in range(0, x.shape[0], batch_size)
    ]
    codes = torch.cat([p.codes.cpu() for p in parts]).numpy().astype(np.int64)
    if model.cfg.last_level == "unique":
        from steerrec.ids.uniform import unique_last_level

        last = torch.cat([p.residuals[:, -1].cpu() for p in parts]).numpy()
        codes[:, -1] = unique_last_level(codes[:, :-1], last, model.codebooks[-1].detach().cpu().numpy(), codes[:, -1])
    return codes


def _check_codes(codes: np.ndarray) -> np.ndarray:
    codes = np.asarray(codes)
    if codes.ndim != 2 or not np.issubdtype(codes.dtype, np.integer):
        raise ValueError(
            f"codes: expected a 2-D integer array [n_items, levels], got shape {codes.shape} dtype {codes.dtype}"
        )
    return codes.astype(np.int64, copy=False)


def add_collision_code(codes: np.ndarray, limit: int | None = None) -> np.ndarray:
    """Append a code that tells apart items sharing a prefix: [n, L] -> [n, L + 1].

    Items with the same L codes get 0, 1, 2, ... in order of their row index, so every
    row of the result is unique. With `limit`, a group larger than `limit` raises (its
    last code would fall outside a vocabulary of `limit` tokens).
    """
    codes = _check_codes(codes)
    _, group = np.unique(codes, axis=0, return_inverse=True)
    group = group.reshape(-1)
    order = np.argsort(group, kind="stable")  # rows grouped, row order kept inside a group
    sorted_group = group[order]
    starts = np.flatnonzero(np.r_[True, sorted_group[1:] != sorted_group[:-1]])
    sizes = np.diff(np.r_[starts, len(order)])
    rank = np.arange(len(order)) - np.repeat(starts, sizes)
    extra = np.empty(len(order), dtype=np.int64)
    extra[order] = rank
    if limit is not None and extra.size and int(extra.max()) >= limit:
        worst = int(order[starts[int(np.argmax(sizes))]])
        raise ValueError(
            f"codes: {int(sizes.max())} items share the prefix {codes[worst].tolist()} "
            f"(first at row {worst}), more than the collision code's limit {limit}"
        )
    out = np.concatenate([codes, extra[:, None]], axis=1)
    if np.unique(out, axis=0).shape[0] != out.shape[0]:
        raise ValueError("codes: semantic IDs are not unique after adding the collision code")
    return out


def prefix_collisions(codes: np.ndarray) -> tuple[int, int]:
    """(items that share their codes with another item, size of the largest such group)."""
    codes = _check_codes(codes)
    if codes.shape[0] == 0:
        return 0, 0
    _, counts = np.unique(codes, axis=0, return_counts=True)
    return int(counts[counts > 1].sum()), int(counts.max())


@torch.no_grad()
def quality_report(model: RQVAE, embeddings: np.ndarray, codes: np.ndarray) -> dict:
    """Reconstruction MSE (standardized input), coverage per level, collisions, uniqueness.

    codes are [n, L] from `assign_codes` or [n, L + 1] with the collision code.
    """
    x = check_embeddings(embeddings, model.cfg.input_dim)
    codes = _check_codes(codes)
    levels = model.cfg.n_levels
    if codes.shape[0] != x.shape[0] or codes.shape[1] not in (levels, levels + 1):
        raise ValueError(
            f"codes: shape {codes.shape} does not fit {x.shape[0]} items and {levels} levels (+1 collision code)"
        )
    prefix = codes[:, :levels]
    full = codes if codes.shape[1] == levels + 1 else add_collision_code(prefix)
    model.eval()
    data = torch.from_numpy(x).to(model.codebooks.device)
    sq_error = 0.0
    for i in range(0, x.shape[0], 4096):
        batch = data[i : i + 4096]
        sq_error += float((model.reconstruct(batch) - model.standardize(batch)).pow(2).sum())
    before, max_group = prefix_collisions(prefix)
    after, _ = prefix_collisions(full)
    report = {"n_items": int(x.shape[0]), "recon_mse": sq_error / x.size}
    for level in range(levels):
        used = np.unique(prefix[:, level]).size
        report[f"coverage_{level + 1}"] = used / model.cfg.codebook_size
    report.update(
        {"collisions_before": before, "max_group_size": max_group, "collisions_after": after, "unique_ids": after == 0}
    )
    return report


def semantic_ids_table(item_ids: Sequence[str], codes: np.ndarray) -> pa.Table:
    """The run folder's semantic_ids.parquet table: item_id, codes (list<int32>)."""
    codes = _check_codes(codes)
    if len(item_ids) != codes.shape[0]:
        raise ValueError(f"semantic_ids: {len(item_ids)} item ids but {codes.shape[0]} code rows")
    table = pa.table(
        {"item_id": pa.array(list(item_ids), pa.string()), "codes": pa.array(codes.tolist(), pa.list_(pa.int32()))}
    )
    return validate(table, SEMANTIC_IDS, "semantic_ids")
