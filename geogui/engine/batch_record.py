"""A training step's BatchRecord, assembled on the host from what the step measured: its one
transfer (`StepValues`), the routing numbers computed from it, its clocks and the model's host state."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

from geogui.engine.device import driver_memory_bytes, memory_bytes
from geogui.engine.metrics import BatchRecord
from geogui.engine.routing_stats import LayerRouting
from geogui.engine.state import TrainingState
from geogui.engine.step_values import StepValues


class StepTimes(NamedTuple):
    batch: float  # forward, backward and optimizer: the slowest rank's, the device drained
    data: float  # drawing and staging the batch
    tokens_per_s: float
    wall: float  # since the run started


def batch_record(state: TrainingState, train_tokens: int, values: StepValues, routing: LayerRouting | None,
                 lrs: tuple[float, float], times: StepTimes, device: torch.device) -> BatchRecord:
    layers = state.model.moe_layers
    first = layers[0]
    # The forced geometric step gives every presentation's expert every token.
    slots = values.layer_slots.sum(axis=0) if values.layer_slots is not None else np.ones(first.num_total)
    return BatchRecord(
        step=state.step, epoch=state.tokens_seen / train_tokens, mode=state.mode.value,
        penalty_weight=state.penalty_weight, batch_time_s=times.batch, data_time_s=times.data,
        loss=values.loss, task_loss=values.task_loss, aux_loss=values.aux_loss,
        penalty=values.penalty, orthogonality=values.orthogonality,
        specialization=values.specialization, lr_model=lrs[0], lr_rotation=lrs[1],
        rotation_angles=values.angles if state.mode.uses_rotator else None,
        expert_load=slots / max(slots.sum(), 1.0),
        ghost_activation=np.mean([layer.ghost_activation for layer in layers], axis=0)
        if first.num_ghost else np.zeros(0),
        saturation=float(np.mean([layer.saturation for layer in layers])),
        tokens_per_s=times.tokens_per_s, tokens_seen=state.tokens_seen,
        memory_bytes=memory_bytes(device), wall_time_s=times.wall,
        driver_memory_bytes=driver_memory_bytes(device),
        expert_utilization=routing.utilization if routing else None,
        routing_entropy=routing.entropy if routing else None,
        layer_overflow=routing.overflow if routing else None, hidden_similarity=values.hidden_similarity,
    )
