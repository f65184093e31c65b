"""A run of the default model's shape (4 MoE layers, E0…E3 and G0…G3, 8 presentations) written by
the RunLog (compact lines and their cache), for the export tests: three modes, evaluated every 100
steps, a non-finite loss among them, and the per-layer routing numbers as the trainer logs them.

In the routed modes (the first and last thirds) each batch has utilization, entropy and overflow:
G1…G3 stay dormant (NaN), G0 wakes halfway, and layer 2's E3 gets no token in the first third, which
a dead-expert notice reports at DEAD_STEP. The middle third is `geometric`: routing forced (none of
those), and the presentations' similarity instead."""

from __future__ import annotations

import numpy as np

from geogui.engine.metrics import BatchRecord, EvalRecord, EventKind, ModeChange, RunEvent
from geogui.rundir.runlog import RunLog
from geogui.settings import Settings

MODES = ("standard", "geometric", "geometric_fast")
DEAD_LAYER, DEAD_EXPERT, DEAD_STEP = 2, "E3", 5


def _similarity(rng: np.random.Generator) -> np.ndarray:
    upper = np.triu(rng.random((8, 8)), 1)
    return upper + upper.T + np.eye(8)


def _utilization(rng: np.random.Generator, step: int, batches: int) -> np.ndarray:
    utilization = rng.random((4, 8)) * 2
    utilization[:, 5:] = np.nan  # G1…G3 never wake
    if step <= batches // 2:
        utilization[:, 4] = np.nan  # G0 wakes halfway
    if step <= batches // 3:
        utilization[DEAD_LAYER, 3] = 0.0
    return utilization


def synthetic_run(path, batches: int):
    rng = np.random.default_rng(batches)
    log = RunLog(path, Settings())
    for step in range(1, batches + 1):
        mode = MODES[(step - 1) * 3 // batches]
        if step > 1 and mode != MODES[(step - 2) * 3 // batches]:
            log.write(ModeChange(step, mode, 0.001, MODES[(step - 2) * 3 // batches], 0.001))
        loss = float("nan") if step == 7 else float(np.float32(3 + rng.random()))
        routed = mode != "geometric"
        log.write(BatchRecord(
            step=step, epoch=step * 1e-4, mode=mode, penalty_weight=0.001, batch_time_s=0.02 + 0.01 * rng.random(),
            data_time_s=1e-4, loss=loss, task_loss=loss, aux_loss=0.01, penalty=0.0, orthogonality=0.0,
            specialization=0.0, lr_model=3e-4 * rng.random(), lr_rotation=0.0,
            rotation_angles=None if mode == "standard" else rng.normal(0, 0.5, (8, 4)).astype(np.float32).astype(float),
            expert_load=rng.dirichlet(np.ones(8)), ghost_activation=rng.random(4), saturation=0.01,
            tokens_per_s=1e5 * (1 + rng.random()), tokens_seen=step * 512, memory_bytes=5e8, wall_time_s=step * 0.02,
            expert_utilization=_utilization(rng, step, batches) if routed else None,
            routing_entropy=rng.random(4) if routed else None, layer_overflow=rng.random(4) * 0.1 if routed else None,
            hidden_similarity=None if routed else _similarity(rng)))
        if step == DEAD_STEP:
            log.write(RunEvent(step, EventKind.EXPERT_DEAD,
                               f"layer {DEAD_LAYER}: expert {DEAD_EXPERT} has had no tokens for {step} steps"))
        if step % 100 == 0:
            log.write(EvalRecord(step, 3.0 - step * 1e-5, 20.0))
    log.close("stopped")
    return path
