"""Seeding RQ-VAE codebooks: k-means initialization and re-seeding of dead codes.

k-means is scikit-learn's (Lloyd, k-means++ init, seeded): scikit-learn is already
installed as a dependency of sentence-transformers, and its implementation is faster
and better tested than a hand-written loop. Initialization runs once per level on one
batch, so the CPU round trip does not matter on a GPU worker.
"""

from __future__ import annotations

import logging

import torch

from steerrec.ids.rqvae import RQVAE, residual_quantize

logger = logging.getLogger(__name__)


def kmeans(x: torch.Tensor, k: int, seed: int, iters: int = 50) -> torch.Tensor:
    """Centroids [k, D] of the points x [N, D], on x's device and dtype.

    When x has fewer than k distinct points, each distinct point becomes a centroid and
    the remaining rows repeat points of x (they lose every tie, so they start unused).
    """
    from sklearn.cluster import KMeans

    points = x.detach().float().cpu()
    n_distinct = int(torch.unique(points, dim=0).shape[0])
    k_fit = min(k, n_distinct)
    fitted = KMeans(n_clusters=k_fit, n_init=1, max_iter=iters, random_state=seed).fit(points.numpy())
    centroids = torch.from_numpy(fitted.cluster_centers_).float()  # [k_fit, D]
    if k_fit < k:
        logger.info("k-means: %d distinct points for %d codes; %d codes start unused", n_distinct, k, k - k_fit)
        generator = torch.Generator().manual_seed(seed)
        extra = points[torch.randint(points.shape[0], (k - k_fit,), generator=generator)]
        centroids = torch.cat([centroids, extra])
    return centroids.to(device=x.device, dtype=x.dtype)


@torch.no_grad()
def init_codebooks(model: RQVAE, x: torch.Tensor, seed: int, iters: int = 50) -> None:
    """Set each level's codebook to k-means centroids of that level's residuals on x.

    x are raw embeddings [N, input_dim]; the encoder runs in eval mode (no dropout).
    """
    was_training = model.training
    model.eval()
    residual = model.encoder(model.standardize(x))  # [N, D]
    for level in range(model.cfg.n_levels):
        centroids = kmeans(residual, model.cfg.codebook_size, seed + level, iters)  # [K, D]
        model.codebooks[level].copy_(centroids)
        nearest = residual_quantize(residual, centroids[None]).embeddings[:, 0]  # [N, D]
        residual = residual - nearest
    model.train(was_training)


@torch.no_grad()
def reseed_dead_codes(
    model: RQVAE,
    usage: torch.Tensor,
    residuals: torch.Tensor,
    generator: torch.Generator,
    optimizer: torch.optim.Optimizer | None = None,
) -> list[int]:
    """Move every unused code (usage [L, K] == 0) onto a random residual of its level.

    residuals [N, L, D] come from `residual_quantize`; `generator` is a CPU generator.
    Adam moments of the moved rows are zeroed. Returns the number moved per level.
    """
    n = residuals.shape[0]
    moved = []
    state = optimizer.state.get(model.codebooks, {}) if optimizer is not None else {}
    for level in range(model.cfg.n_levels):
        dead = (usage[level] == 0).nonzero().squeeze(1).to(model.codebooks.device)  # [n_dead]
        n_dead = int(dead.numel())
        moved.append(n_dead)
        if n_dead == 0:
            continue
        if n >= n_dead:
            pick = torch.randperm(n, generator=generator)[:n_dead]
        else:
            pick = torch.randint(n, (n_dead,), generator=generator)
        model.codebooks[level, dead] = residuals[pick.to(residuals.device), level]
        for key in ("exp_avg", "exp_avg_sq"):
            if key in state:
                state[key][level, dead] = 0
    return moved
