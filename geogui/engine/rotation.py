"""The data rotator: learnable angles that rotate token embeddings, one rotation per presentation.

Presentation p has `r` angles, angles = max_rotation * tanh(theta). The embedding channels are split
into r equal groups of adjacent channel pairs; angle i rotates every pair (2j, 2j+1) of group i by a
Givens rotation. R_p is therefore block-diagonal with 2x2 rotation blocks: exactly orthogonal, and
applied in O(B*T*D) without ever forming a D x D matrix.
"""

from __future__ import annotations

import torch
from torch import nn


class DataRotator(nn.Module):
    def __init__(self, presentations: int, rotation_dimensions: int, d_model: int, max_rotation: float):
        super().__init__()
        if d_model % (2 * rotation_dimensions):
            raise ValueError("d_model must be divisible by 2 * rotation_dimensions")
        self.presentations = presentations
        self.rotation_dimensions = rotation_dimensions
        self.d_model = d_model
        self.max_rotation = max_rotation
        # Small distinct starting angles, so presentations differ from the first step on.
        self.theta = nn.Parameter(torch.empty(presentations, rotation_dimensions).uniform_(-0.5, 0.5))

    def angles(self) -> torch.Tensor:
        """(P, r) rotation angles in radians, bounded by max_rotation."""
        return self.max_rotation * torch.tanh(self.theta)

    def rotate(self, x: torch.Tensor, angles: torch.Tensor) -> torch.Tensor:
        """Rotate the last dimension of x by the angles.

        `angles` has shape (..., r) where `...` broadcasts against x's leading dimensions, e.g.
        x (B, T, D) with angles (r,), or x (P, B, T, D) with angles (P, 1, 1, r).
        """
        r = self.rotation_dimensions
        pairs = x.unflatten(-1, (r, -1, 2))  # (..., r, D / 2r, 2)
        cos = torch.cos(angles).unsqueeze(-1)  # (..., r, 1)
        sin = torch.sin(angles).unsqueeze(-1)
        first, second = pairs[..., 0], pairs[..., 1]
        rotated = torch.stack((cos * first - sin * second, sin * first + cos * second), dim=-1)
        return rotated.flatten(-3)

    def matrix(self, presentation: int) -> torch.Tensor:
        """R_p as an explicit D x D matrix (rows map inputs to outputs); for checks, never for training."""
        eye = torch.eye(self.d_model, dtype=self.theta.dtype, device=self.theta.device)
        # rotate() maps row vectors x -> x R^T, so rotating the identity gives R^T.
        return self.rotate(eye, self.angles()[presentation]).T
