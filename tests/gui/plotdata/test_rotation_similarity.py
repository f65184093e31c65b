"""The rotation similarity from the angles alone is the normalised trace of the explicit rotation
matrices, tr(R_p^T R_q) / D; its mean over pairs and the hidden states' are the brute-force means."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from geogui.engine.rotation import DataRotator
from geogui.gui.plotdata.rotation_similarity import mean_off_diagonal, mean_pair_similarity, rotation_similarity

P, R, D = 8, 4, 32


def rotator(seed: int, max_rotation: float = 2.0) -> DataRotator:
    torch.manual_seed(seed)
    module = DataRotator(P, R, D, max_rotation).double()
    with torch.no_grad():
        module.theta.uniform_(-2.0, 2.0)  # tanh near ±1 too: angles close to ±max_rotation
    return module


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_it_equals_the_normalised_trace_of_the_explicit_rotation_matrices(seed):
    module = rotator(seed)
    matrices = [module.matrix(p).detach().numpy() for p in range(P)]
    by_trace = np.array([[np.trace(matrices[p].T @ matrices[q]) / D for q in range(P)] for p in range(P)])
    angles = module.angles().detach().numpy()
    got = rotation_similarity(angles)
    assert got.shape == (P, P)
    np.testing.assert_allclose(got, by_trace, rtol=0, atol=1e-12)
    assert by_trace.min() < 0.5  # the seeds give rotations that really differ, not a trivial all-ones check
    np.testing.assert_allclose(np.diag(got), 1.0, atol=1e-12)
    np.testing.assert_allclose(got, got.T, atol=1e-12)


def test_opposite_rotations_are_minus_one_and_a_quarter_turn_zero():
    angles = np.array([[math.pi / 2] * R, [-math.pi / 2] * R, [0.0] * R])
    got = rotation_similarity(angles)
    assert got[0, 1] == pytest.approx(-1.0)
    assert got[0, 2] == pytest.approx(0.0, abs=1e-12) and got[1, 2] == pytest.approx(0.0, abs=1e-12)


def test_a_step_without_angles_has_no_similarity():
    assert np.isnan(rotation_similarity(np.full((P, R), np.nan))).all()
    assert np.isnan(rotation_similarity(np.zeros((P, 0)))).all()
    with pytest.raises(ValueError):
        rotation_similarity(np.zeros(P * R))


def test_the_mean_over_pairs_is_the_mean_off_the_diagonal_of_each_rows_matrix():
    rng = np.random.default_rng(3)
    rows = rng.uniform(-2, 2, (6, P * R))
    rows[2] = np.nan  # a standard-mode batch
    got = mean_pair_similarity(rows, P)
    off = ~np.eye(P, dtype=bool)
    want = [rotation_similarity(row.reshape(P, R))[off].mean() for row in rows]
    np.testing.assert_allclose(got, want, atol=1e-12)
    assert np.isnan(got[2]) and not np.isnan(got[[0, 1, 3, 4, 5]]).any()
    assert np.isnan(mean_pair_similarity(rows, 1)).all()  # one presentation has no pairs
    assert mean_pair_similarity(np.zeros((0, P * R)), P).shape == (0,)


def test_the_hidden_states_mean_over_pairs_leaves_out_the_diagonal():
    rng = np.random.default_rng(4)
    rows = rng.random((5, P * P))
    rows[1] = np.nan  # a step that did not measure it
    got = mean_off_diagonal(rows, P)
    off = ~np.eye(P, dtype=bool)
    want = [row.reshape(P, P)[off].mean() for row in rows]
    np.testing.assert_allclose(got, want, atol=1e-12)
    assert np.isnan(got[1])
    assert np.isnan(mean_off_diagonal(np.zeros((3, 0)), P)).all()  # a run logged without it
