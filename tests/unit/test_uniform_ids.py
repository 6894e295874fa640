"""Distinct last-level codes (steerrec.ids.uniform) against hand-worked values and brute force."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from steerrec.ids.rqvae import RQVAE, RQVAEConfig
from steerrec.ids.semantic_ids import assign_codes, prefix_collisions
from steerrec.ids.uniform import unique_last_level


def _cost(residual, codebook, codes):
    return float(((residual - codebook[codes]) ** 2).sum())


def test_docstring_example():
    codebook = np.array([[0.0, 0.0], [1.0, 0.0]])
    residual = np.array([[0.0, 0.0], [0.1, 0.0]])
    out = unique_last_level(np.zeros((2, 2), int), residual, codebook, np.array([0, 0]))
    assert out.tolist() == [0, 1]


def test_matches_brute_force_and_leaves_unique_items_alone():
    rng = np.random.default_rng(0)
    k, d = 4, 3
    codebook = rng.normal(size=(k, d))
    residual = rng.normal(size=(7, d))
    nearest = ((residual[:, None] - codebook[None]) ** 2).sum(-1).argmin(1)
    prefix = np.array([[0], [0], [0], [1], [1], [2], [3]])
    nearest[:3] = nearest[0]  # group 0 collides three ways
    nearest[3:5] = [0, 1]  # group 1 has no collision: kept as is
    out = unique_last_level(prefix, residual, codebook, nearest)
    assert out[3:].tolist() == nearest[3:].tolist()
    assert len(set(out[:3].tolist())) == 3
    best = min(itertools.permutations(range(k), 3), key=lambda p: _cost(residual[:3], codebook, np.array(p)))
    assert _cost(residual[:3], codebook, out[:3]) == pytest.approx(_cost(residual[:3], codebook, np.array(best)))


def test_group_larger_than_codebook_keeps_only_the_overflow():
    codebook = np.eye(2)
    residual = np.zeros((5, 2))
    out = unique_last_level(np.zeros((5, 1), int), residual, codebook, np.zeros(5, int))
    # 5 items over 2 codes: rounds of 2, 2, 1 -> each code used at most 3 times
    assert np.bincount(out, minlength=2).max() == 3


def test_shape_errors_name_the_shapes():
    with pytest.raises(ValueError, match="residual"):
        unique_last_level(np.zeros((2, 1), int), np.zeros((3, 2)), np.eye(2), np.zeros(2, int))


def test_assign_codes_unique_removes_collisions():
    torch.manual_seed(0)
    x = np.random.default_rng(0).normal(size=(64, 8)).astype(np.float32)
    x[32:] = x[:32] + 1e-4  # near-duplicates: same codes under nearest assignment
    base = dict(input_dim=8, hidden_dims=[8], latent_dim=4, n_levels=2, codebook_size=16, kmeans_init=False)
    model = RQVAE(RQVAEConfig(**base))
    model.fit_standardizer(torch.from_numpy(x))
    nearest = assign_codes(model, x)
    model.cfg.last_level = "unique"
    unique = assign_codes(model, x)
    assert prefix_collisions(nearest)[0] > 0
    assert prefix_collisions(unique)[0] < prefix_collisions(nearest)[0]
    assert (unique[:, 0] == nearest[:, 0]).all()  # only the last level moves
    with pytest.raises(ValueError, match="last_level"):
        RQVAEConfig(**base, last_level="sinkhorn")
