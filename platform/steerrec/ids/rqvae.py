"""RQ-VAE over item embeddings: MLP encoder, residual quantizer, MLP decoder.

Settings follow Mender's Appendix A.1 (Paulus et al., 2025) and TIGER (Rajput et al.,
2023): standardized inputs, LayerNorm + ReLU + dropout layers (768 -> 512 -> 256 -> 128
for 768-d inputs), 3 levels x 256 codes, commitment beta 0.25, AdamW with weight decay
0.1. The paper gives no learning rate, epochs, batch size or dropout rate; the defaults
below for those are ours.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

logger = logging.getLogger(__name__)

WEIGHTS_FILE = "rqvae.safetensors"
CONFIG_FILE = "rqvae_config.json"
LAST_LEVEL = ("nearest", "unique")


@dataclass
class RQVAEConfig:
    input_dim: int = 768  # the embedder's dimension (384 for MiniLM, 768 for Sentence-T5)
    hidden_dims: list[int] = field(default_factory=lambda: [512, 256])
    latent_dim: int = 128
    n_levels: int = 3
    codebook_size: int = 256
    beta: float = 0.25  # commitment weight
    dropout: float = 0.1
    lr: float = 1e-3
    weight_decay: float = 0.1
    epochs: int = 200
    batch_size: int = 1024
    seed: int = 0
    kmeans_init: bool = True  # codebooks from k-means on the first batch's residuals
    kmeans_iters: int = 50
    reseed_dead_codes: bool = True  # after each epoch, unused codes <- random residuals
    # last-level codes when assigning IDs: "nearest" code, or "unique": items sharing the first
    # L - 1 codes take distinct close codes (steerrec.ids.uniform), so collisions become rare
    last_level: str = "nearest"

    def __post_init__(self) -> None:
        positive = (
            "input_dim",
            "latent_dim",
            "n_levels",
            "codebook_size",
            "lr",
            "epochs",
            "batch_size",
            "kmeans_iters",
        )
        for name in positive:
            value = getattr(self, name)
            if isinstance(value, bool) or not value > 0:
                raise ValueError(f"rqvae.{name} must be > 0, got {value!r}")
        if not self.hidden_dims or any(
            not isinstance(h, int) or isinstance(h, bool) or h <= 0 for h in self.hidden_dims
        ):
            raise ValueError(f"rqvae.hidden_dims must be a non-empty list of positive ints, got {self.hidden_dims!r}")
        self.hidden_dims = list(self.hidden_dims)
        if self.beta < 0:
            raise ValueError(f"rqvae.beta must be >= 0, got {self.beta!r}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"rqvae.dropout must be in [0, 1), got {self.dropout!r}")
        if self.weight_decay < 0:
            raise ValueError(f"rqvae.weight_decay must be >= 0, got {self.weight_decay!r}")
        if self.last_level not in LAST_LEVEL:
            raise ValueError(f"rqvae.last_level must be one of {LAST_LEVEL}, got {self.last_level!r}")


class Quantized(NamedTuple):
    codes: torch.Tensor  # [B, L] int64
    embeddings: torch.Tensor  # [B, L, D] chosen codebook rows (grad to codebooks)
    residuals: torch.Tensor  # [B, L, D] what each level quantized (grad to the encoder)


class RQVAEOutput(NamedTuple):
    loss: torch.Tensor  # recon + quant
    recon_loss: torch.Tensor  # MSE of the standardized input
    quant_loss: torch.Tensor  # codebook + beta * commitment, summed over levels
    codes: torch.Tensor  # [B, L]
    residuals: torch.Tensor  # [B, L, D]


def residual_quantize(z: torch.Tensor, codebooks: torch.Tensor) -> Quantized:
    """Quantize z [B, D] level by level with codebooks [L, K, D] (RQ-VAE, Lee et al. 2022).

    Level l picks the code nearest (Euclidean) to r_l, with r_0 = z and
    r_{l+1} = r_l - sg[e_l]; ties go to the lower index. The quantized vector is the sum
    of the chosen rows, `embeddings.sum(1)`.
    """
    codes, chosen, residuals = [], [], []
    residual = z
    for codebook in codebooks:  # [K, D]
        dist = residual.pow(2).sum(-1, keepdim=True) - 2 * residual @ codebook.T + codebook.pow(2).sum(-1)  # [B, K]
        idx = dist.argmin(-1)  # [B]
        e = codebook[idx]  # [B, D]
        codes.append(idx)
        chosen.append(e)
        residuals.append(residual)
        residual = residual - e.detach()
    return Quantized(torch.stack(codes, 1), torch.stack(chosen, 1), torch.stack(residuals, 1))


def quantization_loss(residuals: torch.Tensor, embeddings: torch.Tensor, beta: float) -> torch.Tensor:
    """sum_l ||sg[r_l] - e_l||^2 + beta ||r_l - sg[e_l]||^2, each a mean over batch and dims.

    VQ-VAE's codebook and commitment terms (van den Oord et al. 2017, Eq. 3) at every level.
    Example: r = [[1, 0]], e = [[0, 0]], beta = 0.25 -> 0.5 + 0.25 * 0.5 = 0.625.
    """
    codebook = (residuals.detach() - embeddings).pow(2).mean(dim=(0, 2))  # [L]
    commitment = (residuals - embeddings.detach()).pow(2).mean(dim=(0, 2))  # [L]
    return (codebook + beta * commitment).sum()


def _mlp(dims: list[int], dropout: float) -> nn.Sequential:
    """Linear -> LayerNorm -> ReLU -> Dropout per hidden layer; the last Linear is bare."""
    layers: list[nn.Module] = []
    for i, (d_in, d_out) in enumerate(zip(dims[:-1], dims[1:])):
        layers.append(nn.Linear(d_in, d_out))
        if i < len(dims) - 2:
            layers += [nn.LayerNorm(d_out), nn.ReLU(), nn.Dropout(dropout)]
    return nn.Sequential(*layers)


class RQVAE(nn.Module):
    """Encoder, residual quantizer and decoder; inputs are raw embeddings [B, input_dim].

    The per-dimension mean and std that standardize inputs are buffers (saved with the
    weights), so new items are encoded with the training set's statistics.
    """

    def __init__(self, cfg: RQVAEConfig) -> None:
        super().__init__()
        self.cfg = cfg
        dims = [cfg.input_dim, *cfg.hidden_dims, cfg.latent_dim]
        self.encoder = _mlp(dims, cfg.dropout)
        self.decoder = _mlp(dims[::-1], cfg.dropout)
        bound = 1.0 / cfg.codebook_size
        self.codebooks = nn.Parameter(
            torch.empty(cfg.n_levels, cfg.codebook_size, cfg.latent_dim).uniform_(-bound, bound)
        )
        self.register_buffer("mean", torch.zeros(cfg.input_dim))
        self.register_buffer("std", torch.ones(cfg.input_dim))

    @torch.no_grad()
    def fit_standardizer(self, x: torch.Tensor) -> None:
        """Store x's per-dimension mean and std (std 1 where a dimension is constant)."""
        self.mean.copy_(x.mean(0))
        std = x.std(0, unbiased=False)
        self.std.copy_(torch.where(std > 1e-8, std, torch.ones_like(std)))

    def standardize(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std

    def quantize(self, x: torch.Tensor) -> Quantized:
        """Encode raw embeddings x [B, input_dim] and quantize the latents."""
        return residual_quantize(self.encoder(self.standardize(x)), self.codebooks)

    def forward(self, x: torch.Tensor) -> RQVAEOutput:
        target = self.standardize(x)  # [B, input_dim]
        z = self.encoder(target)  # [B, D]
        q = residual_quantize(z, self.codebooks)
        z_q = z + (q.embeddings.sum(1) - z).detach()  # straight-through estimator
        recon_loss = F.mse_loss(self.decoder(z_q), target)
        quant_loss = quantization_loss(q.residuals, q.embeddings, self.cfg.beta)
        return RQVAEOutput(recon_loss + quant_loss, recon_loss, quant_loss, q.codes, q.residuals)

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """The decoder's output for the quantized latents, in standardized space."""
        return self.decoder(self.quantize(x).embeddings.sum(1))


def save_rqvae(model: RQVAE, directory: str | Path) -> None:
    """Write rqvae.safetensors (weights, codebooks, standardizer) and rqvae_config.json."""
    from safetensors.torch import save_file

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(directory / WEIGHTS_FILE))
    (directory / CONFIG_FILE).write_text(json.dumps(asdict(model.cfg), indent=2) + "\n")


def load_rqvae(directory: str | Path, device: str | torch.device = "cpu") -> RQVAE:
    """Rebuild the model saved by `save_rqvae` in `directory`, in eval mode."""
    from safetensors.torch import load_file

    directory = Path(directory)
    for name in (CONFIG_FILE, WEIGHTS_FILE):
        if not (directory / name).is_file():
            raise FileNotFoundError(f"{directory / name}: not found (expected a save_rqvae folder)")
    try:
        cfg = RQVAEConfig(**json.loads((directory / CONFIG_FILE).read_text()))
    except TypeError as exc:
        raise ValueError(f"{directory / CONFIG_FILE}: {exc}") from exc
    model = RQVAE(cfg)
    model.load_state_dict(load_file(str(directory / WEIGHTS_FILE)))
    return model.to(device).eval()
