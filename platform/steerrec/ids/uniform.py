"""Distinct last-level codes for items that share a prefix (collision-aware assignment).

Nearest-code assignment lets items with near-identical text land on the same L codes; a
collision code then tells them apart, so their IDs carry an arbitrary extra token.
LC-Rec's "uniform semantic mapping" (Zheng et al., 2024, Sec. 3.1) instead re-assigns the
last level of colliding items so that they take different codes, choosing close codes.
We solve that re-assignment exactly: within each group of items sharing the first L - 1
codes, a minimum-cost matching of items to distinct last-level codes, the cost being the
squared distance of each item's last residual to each code (scipy's
`linear_sum_assignment`, the Hungarian method; LC-Rec approximates it with Sinkhorn-Knopp
iterations). Only groups with a collision at the last level are re-assigned, so every
other item keeps its nearest code. A group larger than the codebook keeps collisions for
its overflow (the collision code still separates them).

    last = unique_last_level(prefix, residual, codebook, nearest)   # [n]
"""

from __future__ import annotations

import numpy as np


def unique_last_level(
    prefix: np.ndarray, residual: np.ndarray, codebook: np.ndarray, nearest: np.ndarray
) -> np.ndarray:
    """Last-level codes [n]: `nearest` where unique, a min-cost distinct matching in colliding groups.

    prefix [n, L-1] int: the first codes; residual [n, D]: what the last level quantizes;
    codebook [K, D]; nearest [n] int: the nearest-code choice.

    Example: two items with the same prefix and residuals [0, 0] and [0.1, 0] over codes
    [[0, 0], [1, 0]] both pick code 0 by nearest; the matching gives the second code 1
    (cost 0 + 0.81 < 0.01 + 1).
    """
    from scipy.optimize import linear_sum_assignment

    prefix = np.asarray(prefix, dtype=np.int64).reshape(len(nearest), -1)
    residual, codebook = np.asarray(residual, dtype=np.float64), np.asarray(codebook, dtype=np.float64)
    nearest = np.asarray(nearest, dtype=np.int64)
    if residual.shape[0] != nearest.shape[0] or residual.shape[1] != codebook.shape[1]:
        raise ValueError(
            f"unique_last_level: residual {residual.shape} does not fit {nearest.shape[0]} items and "
            f"codebook {codebook.shape}"
        )
    out = nearest.copy()
    _, group = np.unique(prefix, axis=0, return_inverse=True) if prefix.shape[1] else (None, np.zeros(len(out)))
    group = np.asarray(group).reshape(-1)
    full = group * codebook.shape[0] + nearest
    _, full_counts = np.unique(full, return_inverse=False, return_counts=True)
    colliding = np.unique(group[np.isin(full, np.unique(full)[full_counts > 1])])
    for g in colliding:
        rows = np.flatnonzero(group == g)
        cost = ((residual[rows, None, :] - codebook[None, :, :]) ** 2).sum(-1)  # [g, K]
        for start in range(0, len(rows), codebook.shape[0]):  # overflow beyond K: another round
            part = slice(start, start + codebook.shape[0])
            picked_rows, codes = linear_sum_assignment(cost[part])
            out[rows[part][picked_rows]] = codes
    return out
