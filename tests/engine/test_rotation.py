import math

import pytest
import torch

from geogui.engine.rotation import DataRotator


@pytest.fixture
def rotator() -> DataRotator:
    torch.manual_seed(0)
    rot = DataRotator(presentations=8, rotation_dimensions=4, d_model=64, max_rotation=2.0)
    with torch.no_grad():
        rot.theta.normal_(0, 2.0)  # large angles, well away from the identity
    return rot


def test_each_rotation_is_orthogonal(rotator):
    eye = torch.eye(64)
    for p in range(8):
        r = rotator.matrix(p)
        assert torch.allclose(r.T @ r, eye, atol=1e-5)
        assert torch.linalg.det(r).item() == pytest.approx(1.0, abs=1e-4)
        assert not torch.allclose(r, eye, atol=1e-2)  # it really rotates


def test_angles_are_bounded_by_max_rotation(rotator):
    angles = rotator.angles()
    assert angles.shape == (8, 4)
    assert angles.abs().max().item() <= 2.0
    assert torch.allclose(angles, 2.0 * torch.tanh(rotator.theta))


def test_rotate_equals_the_matrix_and_preserves_norms(rotator):
    x = torch.randn(3, 5, 64)
    for p in (0, 5):
        rotated = rotator.rotate(x, rotator.angles()[p])
        assert torch.allclose(rotated, x @ rotator.matrix(p).T, atol=1e-5)
        assert torch.allclose(rotated.norm(dim=-1), x.norm(dim=-1), atol=1e-4)


def test_batched_rotation_matches_one_presentation_at_a_time(rotator):
    x = torch.randn(2, 7, 64)
    angles = rotator.angles()
    batched = rotator.rotate(x.unsqueeze(0), angles[:, None, None, :])
    for p in range(8):
        assert torch.allclose(batched[p], rotator.rotate(x, angles[p]), atol=1e-6)


def test_angle_i_only_moves_its_own_channel_group():
    rot = DataRotator(presentations=1, rotation_dimensions=4, d_model=16, max_rotation=2.0)
    angles = torch.tensor([0.0, math.pi / 2, 0.0, 0.0])
    x = torch.arange(16.0)
    y = rot.rotate(x, angles)
    group = slice(4, 8)  # 16 channels / 4 groups: group 1 is channels 4..7
    assert torch.equal(y[:4], x[:4]) and torch.equal(y[8:], x[8:])
    assert torch.allclose(y[group], torch.tensor([-5.0, 4.0, -7.0, 6.0]), atol=1e-5)  # (a, b) -> (-b, a)
