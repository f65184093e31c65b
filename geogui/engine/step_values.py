"""A training step's numbers: how they lie on the device for the step's one transfer to the host, and
the typed values the host reads back."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from geogui.engine.modes import TERM_NAMES, LossTerms
from geogui.engine.rotation import DataRotator
from geogui.engine.transfer import PackedLayout
from geogui.settings import ModelSettings


@dataclass(frozen=True)
class StepValues:
    """As means over ranks, on the host (float64)."""

    loss: float
    task_loss: float
    aux_loss: float
    penalty: float
    orthogonality: float
    specialization: float
    grad_norm: float
    expert_slots: np.ndarray  # (E + G,) slots per expert, summed over layers
    layer_overflow: np.ndarray  # (L,) each layer's overflow; zeros when routing was forced
    angles: np.ndarray  # (P, r) the rotator's angles before this step's update

    def nonfinite(self) -> list[str]:
        """`name = value` for every term (then the gradient norm) that is not finite."""
        bad = [f"{name} = {value}" for name in TERM_NAMES if not math.isfinite(value := getattr(self, name))]
        if not math.isfinite(self.grad_norm):
            bad.append(f"gradient norm = {self.grad_norm}")
        return bad


class StepLayout:
    """The packed layout of `StepValues` for one model's shapes; built once per run."""

    def __init__(self, cfg: ModelSettings):
        self._capacity_factor, self._num_primary, self._layers = cfg.capacity_factor, cfg.num_experts, cfg.n_layers
        self._packed = PackedLayout(StepValues, [
            *((name, ()) for name in TERM_NAMES),
            ("grad_norm", ()),
            ("expert_slots", (cfg.num_experts + cfg.num_ghost_experts,)),
            ("layer_overflow", (cfg.n_layers,)),
            ("angles", (cfg.presentations, cfg.rotation_dimensions)),
        ])
        # A step is skipped on the device unless all of these are finite.
        self.checked = self._packed.span(TERM_NAMES[0], "grad_norm")

    def pack(self, terms: LossTerms, grad_norm: torch.Tensor, rotator: DataRotator) -> torch.Tensor:
        """One float32 device tensor of the step's numbers, queued without a sync."""
        with torch.no_grad():
            overflow = (terms.routing.overflow(self._capacity_factor, self._num_primary)
                        if terms.routing is not None else terms.loss.new_zeros(self._layers, dtype=torch.float32))
            return self._packed.pack(
                loss=terms.loss, task_loss=terms.task_loss, aux_loss=terms.aux_loss, penalty=terms.penalty,
                orthogonality=terms.orthogonality, specialization=terms.specialization, grad_norm=grad_norm,
                expert_slots=terms.expert_slots, layer_overflow=overflow, angles=rotator.angles(),
            )

    def unpack(self, values: np.ndarray) -> StepValues:
        return self._packed.unpack(values)
