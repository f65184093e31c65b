"""A training step's numbers: how they lie on the device for the step's one transfer to the host, and
the typed values the host reads back.

A routed pass sends its routed slots per (layer, expert), from which the host computes every
routing number (`routing_stats`); the geometric step forces its routing and sends instead each pair
of presentations' hidden-state similarity. Each kind of pass has its layout, built once per run."""

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
    angles: np.ndarray  # (P, r) the rotator's angles before this step's update
    layer_slots: np.ndarray | None = None  # (L, E + G) routed slots; None when routing was forced
    hidden_similarity: np.ndarray | None = None  # (P, P) geometric only (`LossTerms.hidden_similarity`)

    def nonfinite(self) -> list[str]:
        """`name = value` for every term (then the gradient norm) that is not finite."""
        bad = [f"{name} = {value}" for name in TERM_NAMES if not math.isfinite(value := getattr(self, name))]
        if not math.isfinite(self.grad_norm):
            bad.append(f"gradient norm = {self.grad_norm}")
        return bad


class StepLayout:
    """The packed layouts of `StepValues` for one model's shapes: one for a routed pass, one for the
    geometric step; built once per run."""

    def __init__(self, cfg: ModelSettings):
        head = [*((name, ()) for name in TERM_NAMES), ("grad_norm", ()),
                ("angles", (cfg.presentations, cfg.rotation_dimensions))]
        self._routed = PackedLayout(StepValues, [*head, ("layer_slots", (cfg.n_layers, cfg.presentations))])
        similarity = (cfg.presentations, cfg.presentations) if cfg.presentations > 1 else (1, 1)
        self._forced = PackedLayout(StepValues, [*head, ("hidden_similarity", similarity)])
        # A step is skipped on the device unless all of these are finite (the same span in both).
        self.checked = self._routed.span(TERM_NAMES[0], "grad_norm")

    def pack(self, terms: LossTerms, grad_norm: torch.Tensor, rotator: DataRotator) -> torch.Tensor:
        """One float32 device tensor of the step's numbers, queued without a sync."""
        common = dict(loss=terms.loss, task_loss=terms.task_loss, aux_loss=terms.aux_loss, penalty=terms.penalty,
                      orthogonality=terms.orthogonality, specialization=terms.specialization, grad_norm=grad_norm,
                      angles=rotator.angles())
        if terms.routing is not None:
            return self._routed.pack(**common, layer_slots=terms.routing.slot_counts)
        return self._forced.pack(**common, hidden_similarity=terms.hidden_similarity)

    def unpack(self, values: np.ndarray, routed: bool) -> StepValues:
        """The host copy of what `pack` packed for a routed pass (`routed`) or the geometric step."""
        return (self._routed if routed else self._forced).unpack(values)
