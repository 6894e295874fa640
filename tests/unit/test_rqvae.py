"""RQ-VAE semantic IDs: quantizer and losses by hand, k-means init, training, IDs, save/load."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from steerrec.config import load
from steerrec.ids.kmeans import init_codebooks, kmeans, reseed_dead_codes
from steerrec.ids.rqvae import RQVAE, RQVAEConfig, load_rqvae, quantization_loss, residual_quantize, save_rqvae
from steerrec.ids.semantic_ids import (
    add_collision_code,
    assign_codes,
    check_embeddings,
    count_usage,
    make_optimizer,
    prefix_collisions,
    quality_report,
    rqvae_train_step,
    semantic_ids_table,
    train_rqvae,
)


def _tiny_cfg(**overrides) -> RQVAEConfig:
    base = dict(
        input_dim=8,
        hidden_dims=[16],
        latent_dim=4,
        n_levels=2,
        codebook_size=4,
        dropout=0.0,
        epochs=1,
        batch_size=32,
        seed=0,
    )
    return RQVAEConfig(**{**base, **overrides})


def _clusters(n: int, dim: int, k: int, noise: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(k, dim)) * 3
    labels = np.arange(n) % k
    return (centers[labels] + rng.normal(size=(n, dim)) * noise).astype(np.float32), labels


def _train_cfg(**overrides) -> RQVAEConfig:
    base = dict(
        input_dim=32,
        hidden_dims=[64],
        latent_dim=16,
        n_levels=3,
        codebook_size=16,
        dropout=0.0,
        epochs=30,
        batch_size=128,
        seed=0,
    )
    return RQVAEConfig(**{**base, **overrides})


@pytest.fixture(scope="module")
def trained():
    x, _ = _clusters(600, 32, 20, noise=0.3)
    rows: list[dict] = []
    model = train_rqvae(x, _train_cfg(), report=rows.append, progress=False)
    return x, model, rows


# ---- quantizer and losses, by hand -----------------------------------------------------


def test_residual_quantize_hand_case():
    codebooks = torch.tensor(
        [
            [[0.0, 0.0], [1.0, -1.0], [-1.0, 1.0]],  # level 1
            [[0.1, 0.0], [0.0, 0.1], [0.2, 0.1]],  # level 2
        ]
    )
    z = torch.tensor([[1.2, -0.9], [0.0, 0.0]])
    q = residual_quantize(z, codebooks)
    # row 0: nearest of level 1 is [1, -1] (code 1); residual [0.2, 0.1] is code 2 exactly.
    # row 1: code 0 at level 1; residual [0, 0] is equally far from codes 0 and 1 -> 0.
    assert q.codes.tolist() == [[1, 2], [0, 0]]
    torch.testing.assert_close(q.embeddings.sum(1), torch.tensor([[1.2, -0.9], [0.1, 0.0]]))
    torch.testing.assert_close(q.residuals[0], torch.tensor([[1.2, -0.9], [0.2, 0.1]]))


def test_quantization_loss_hand_value():
    r = torch.tensor([[[1.0, 0.0]]])  # [B=1, L=1, D=2]
    e = torch.tensor([[[0.0, 0.0]]])
    assert quantization_loss(r, e, beta=0.25).item() == pytest.approx(0.625)
    two_levels = quantization_loss(torch.cat([r, r], 1), torch.cat([e, r], 1), beta=1.0)
    assert two_levels.item() == pytest.approx(1.0)  # level 2 matches exactly


def test_straight_through_gradient_reaches_encoder():
    torch.manual_seed(0)
    model = RQVAE(_tiny_cfg())
    out = model(torch.randn(16, 8))
    out.recon_loss.backward()
    for name, p in model.encoder.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, f"no reconstruction gradient at {name}"
    # the straight-through path carries no reconstruction gradient to the codebooks
    assert model.codebooks.grad is None or model.codebooks.grad.abs().sum() == 0


def test_one_step_changes_every_parameter():
    torch.manual_seed(0)
    model = RQVAE(_tiny_cfg(dropout=0.1))
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    metrics, codes = rqvae_train_step(model, make_optimizer(model, model.cfg), torch.randn(16, 8))
    assert set(metrics) == {"loss", "recon", "quant"} and codes.shape == (16, 2)
    unchanged = [n for n, p in model.named_parameters() if torch.equal(p, before[n])]
    assert not unchanged, f"not updated by one step: {unchanged}"


# ---- k-means initialization and dead codes ---------------------------------------------


def test_kmeans_centroids_are_cluster_means():
    x, labels = _clusters(40, 2, 4, noise=0.05)
    centroids = kmeans(torch.from_numpy(x), 4, seed=0)
    means = np.stack([x[labels == c].mean(0) for c in range(4)])
    got = centroids.numpy()
    order = [int(np.argmin(((got - m) ** 2).sum(1))) for m in means]
    assert sorted(order) == [0, 1, 2, 3]
    np.testing.assert_allclose(got[order], means, atol=1e-5)


def test_kmeans_with_fewer_distinct_points_than_codes():
    x = torch.tensor([[0.0, 0.0], [5.0, 5.0], [0.0, 0.0], [9.0, 0.0]])
    centroids = kmeans(x, 5, seed=0)
    assert centroids.shape == (5, 2)
    assert {tuple(r) for r in centroids[:3].tolist()} == {(0.0, 0.0), (5.0, 5.0), (9.0, 0.0)}


def test_init_codebooks_places_codes_on_clusters():
    torch.manual_seed(0)
    model = RQVAE(_tiny_cfg())
    x, labels = _clusters(64, 8, 4, noise=1e-3)
    data = torch.from_numpy(x)
    model.fit_standardizer(data)
    init_codebooks(model, data, seed=0)
    z = model.encoder(model.standardize(data)).detach()
    codes = residual_quantize(z, model.codebooks.detach()[:1]).codes[:, 0].numpy()
    assert len(set(codes.tolist())) == 4  # 4 clusters -> 4 codes used
    for c in range(4):  # one code per cluster, and that code is the cluster's mean latent
        assert len(set(codes[labels == c].tolist())) == 1
        mean = z[torch.from_numpy(labels == c)].mean(0)
        torch.testing.assert_close(model.codebooks[0, codes[labels == c][0]].detach(), mean, atol=1e-5, rtol=1e-5)


def test_reseed_dead_codes_moves_only_unused_codes():
    torch.manual_seed(0)
    model = RQVAE(_tiny_cfg())
    before = model.codebooks.detach().clone()
    usage = count_usage(torch.tensor([[0, 1], [2, 1], [2, 3]]), 4)  # level 1: code 3 unused
    assert usage.tolist() == [[1, 0, 2, 0], [0, 2, 0, 1]]
    residuals = torch.arange(3 * 2 * 4, dtype=torch.float32).reshape(3, 2, 4)
    moved = reseed_dead_codes(model, usage, residuals, torch.Generator().manual_seed(0))
    assert moved == [2, 2]
    after = model.codebooks.detach()
    torch.testing.assert_close(after[0, [0, 2]], before[0, [0, 2]])
    torch.testing.assert_close(after[1, [1, 3]], before[1, [1, 3]])
    level1_rows = {tuple(r) for r in residuals[:, 0].tolist()}
    assert {tuple(r) for r in after[0, [1, 3]].tolist()} <= level1_rows
    assert after[0, 1].tolist() != after[0, 3].tolist()  # distinct residuals when enough


# ---- collision code ---------------------------------------------------------------------


def test_collision_code_hand_case():
    codes = np.array([[1, 2, 3], [4, 5, 6], [1, 2, 3], [1, 2, 3], [4, 5, 6], [7, 8, 9]])
    full = add_collision_code(codes)
    assert full[:, 3].tolist() == [0, 0, 1, 2, 1, 0]
    np.testing.assert_array_equal(full[:, :3], codes)
    assert np.unique(full, axis=0).shape[0] == 6
    assert prefix_collisions(codes) == (5, 3)
    assert prefix_collisions(full) == (0, 1)
    with pytest.raises(ValueError, match=r"3 items share the prefix \[1, 2, 3\].*row 0.*limit 2"):
        add_collision_code(codes, limit=2)
    with pytest.raises(ValueError, match="2-D integer"):
        add_collision_code(np.array([1.5, 2.0]))


# ---- training, reports, save/load, determinism ------------------------------------------


def test_training_reduces_reconstruction_and_covers_level_one(trained):
    x, model, rows = trained
    assert [r["epoch"] for r in rows] == list(range(1, 31))
    assert rows[-1]["recon"] < 0.5 * rows[0]["recon"]
    report = quality_report(model, x, assign_codes(model, x))
    assert report["recon_mse"] < 0.5 * rows[0]["recon"]
    assert report["coverage_1"] >= 0.9
    assert report["collisions_after"] == 0 and report["unique_ids"] is True
    assert report["collisions_before"] > 0 and report["max_group_size"] >= 2


def test_save_load_round_trip_gives_identical_codes(trained, tmp_path):
    x, model, _ = trained
    save_rqvae(model, tmp_path / "rqvae")
    loaded = load_rqvae(tmp_path / "rqvae")
    assert loaded.cfg == model.cfg
    np.testing.assert_array_equal(assign_codes(loaded, x), assign_codes(model, x))
    torch.testing.assert_close(loaded.mean, model.mean)
    with pytest.raises(FileNotFoundError, match="rqvae_config.json"):
        load_rqvae(tmp_path / "missing")


def test_training_is_deterministic_by_seed():
    x, _ = _clusters(200, 32, 10, noise=0.3, seed=1)
    cfg = _train_cfg(epochs=3, dropout=0.1)
    a, b = train_rqvae(x, cfg, progress=False), train_rqvae(x, cfg, progress=False)
    for (name, p), q in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(p, q), name
    np.testing.assert_array_equal(assign_codes(a, x), assign_codes(b, x))
    c = train_rqvae(x, _train_cfg(epochs=3, dropout=0.1, seed=1), progress=False)
    assert not torch.equal(a.codebooks, c.codebooks)


def test_semantic_ids_table_has_contract_schema():
    table = semantic_ids_table(["a", "b"], np.array([[1, 2, 3, 0], [1, 2, 3, 1]]))
    assert table.column("codes").to_pylist() == [[1, 2, 3, 0], [1, 2, 3, 1]]
    with pytest.raises(ValueError, match="3 item ids but 2 code rows"):
        semantic_ids_table(["a", "b", "c"], np.array([[1], [2]]))


# ---- input and config checks -------------------------------------------------------------


def test_bad_embeddings_name_the_problem():
    x = np.zeros((4, 8), dtype=np.float32)
    x[2, 5] = np.nan
    with pytest.raises(ValueError, match="row 2 has a NaN"):
        check_embeddings(x, 8)
    with pytest.raises(ValueError, match="dimension 8 does not match rqvae.input_dim=16"):
        check_embeddings(np.zeros((4, 8)), 16)
    with pytest.raises(ValueError, match="2-D"):
        check_embeddings(np.zeros(8), 8)


def test_config_checks_name_field_and_value():
    with pytest.raises(ValueError, match=r"rqvae.beta must be >= 0, got -1"):
        RQVAEConfig(beta=-1.0)
    with pytest.raises(ValueError, match=r"rqvae.codebook_size must be > 0, got 0"):
        RQVAEConfig(codebook_size=0)
    with pytest.raises(ValueError, match=r"rqvae.hidden_dims .* got \[\]"):
        RQVAEConfig(hidden_dims=[])
    with pytest.raises(ValueError, match=r"rqvae.dropout must be in \[0, 1\), got 1.0"):
        RQVAEConfig(dropout=1.0)
    cfg = load(RQVAEConfig, None, ["input_dim=384", "hidden_dims=[256]", "lr=3e-4"])
    assert cfg.input_dim == 384 and cfg.hidden_dims == [256] and cfg.lr == pytest.approx(3e-4)
