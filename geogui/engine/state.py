"""What a run trains or advances, and how it is built from the settings: the state a checkpoint holds."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from geogui.engine.data import VOCAB_SIZE
from geogui.engine.model import MoETransformer, default_dispatch
from geogui.engine.optimizers import build_optimizers
from geogui.engine.rotation import DataRotator
from geogui.settings import Mode, Settings


@dataclass
class TrainingState:
    """Everything a run trains or advances; what a checkpoint must hold."""

    model: MoETransformer
    rotator: DataRotator
    model_optimizer: torch.optim.Optimizer
    rotation_optimizer: torch.optim.Optimizer
    batch_generator: torch.Generator
    mode: Mode
    penalty_weight: float
    step: int = 0
    tokens_seen: int = 0


def build_state(settings: Settings, device: torch.device) -> TrainingState:
    """Model, rotator and both optimizers, seeded so that a run is reproducible on CPU."""
    torch.manual_seed(settings.run.seed)
    cfg = settings.model
    model = MoETransformer(cfg, VOCAB_SIZE).to(device)
    model.set_dispatch(default_dispatch(device.type))
    rotator = DataRotator(cfg.presentations, cfg.rotation_dimensions, cfg.d_model, cfg.max_rotation).to(device)
    model_optimizer, rotation_optimizer = build_optimizers(model, rotator, settings.run)
    generator = torch.Generator().manual_seed(settings.run.seed)
    return TrainingState(model, rotator, model_optimizer, rotation_optimizer, generator,
                         settings.run.mode, settings.run.penalty_weight)
