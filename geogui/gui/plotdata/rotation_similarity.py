"""How alike the presentations are: their rotations, from the angles alone, and their hidden states. Numpy only.

Presentation p rotates the embeddings by R_p, block-diagonal (geogui.engine.rotation): angle i turns
D / (2r) channel pairs by θ_p,i. R_p^T R_q is block-diagonal too, each block a turn by θ_q,i − θ_p,i
whose trace is 2 cos(θ_q,i − θ_p,i); so the normalised similarity

    tr(R_p^T R_q) / D = mean over i of cos(θ_p,i − θ_q,i)

is 1 for the same rotation, 0 for rotations a quarter turn apart in every angle, and can be negative:
angles of ±max_rotation differ by up to 2 · max_rotation, past π/2 at the default 2 rad. No D × D
matrix is formed. The hidden-state similarity of a pair (mean over tokens of |cos(h_p, h_q)|) is
measured by the geometric step itself; its mean over pairs is the orthogonality term over its weight.
"""

from __future__ import annotations

import numpy as np


def rotation_similarity(angles: np.ndarray) -> np.ndarray:
    """(P, r) angles (radians) -> (P, P): entry (p, q) is mean_i cos(θ_p,i − θ_q,i), 1 on the diagonal.
    NaN angles (a step without rotations) give NaN entries."""
    angles = np.asarray(angles, dtype=np.float64)
    if angles.ndim != 2:
        raise ValueError(f"angles must be (presentations, angles), got shape {angles.shape}")
    presentations, count = angles.shape
    if not count:
        return np.full((presentations, presentations), np.nan)
    cos, sin = np.cos(angles), np.sin(angles)
    # cos(a − b) = cos a cos b + sin a sin b, summed over the angles at once.
    return (cos @ cos.T + sin @ sin.T) / count


def mean_pair_similarity(angles: np.ndarray, presentations: int) -> np.ndarray:
    """Per row of (n, P * r) angles (presentation-major), the mean of `rotation_similarity` over the
    pairs p ≠ q; NaN for a row without angles, or fewer than two presentations."""
    angles = np.asarray(angles, dtype=np.float64)
    rows = len(angles)
    if presentations < 2 or not angles.size or angles.shape[1] % presentations:
        return np.full(rows, np.nan)
    per_presentation = angles.reshape(rows, presentations, -1)
    # Over every ordered pair, sum_p,q cos(θ_p − θ_q) = |sum_p e^(iθ_p)|²: O(P) per angle, not O(P²).
    # The diagonal adds P to it.
    every_pair = np.cos(per_presentation).sum(axis=1) ** 2 + np.sin(per_presentation).sum(axis=1) ** 2
    off_diagonal = (every_pair - presentations) / (presentations * (presentations - 1))
    return off_diagonal.mean(axis=1)


def mean_off_diagonal(matrices: np.ndarray, presentations: int) -> np.ndarray:
    """Per row of (n, P * P) matrices (row-major), the mean of the entries off the diagonal; NaN for a
    row without values, or fewer than two presentations."""
    matrices = np.asarray(matrices, dtype=np.float64)
    rows = len(matrices)
    if presentations < 2 or matrices.shape[1:] != (presentations * presentations,):
        return np.full(rows, np.nan)
    square = matrices.reshape(rows, presentations, presentations)
    total = square.sum(axis=(1, 2)) - np.trace(square, axis1=1, axis2=2)
    return total / (presentations * (presentations - 1))
