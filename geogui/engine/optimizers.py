"""The two optimizers of a run, fused, and a step that a non-finite loss skips on the device.

Fused Adam/AdamW (one kernel for every parameter; CPU, CUDA and, since torch 2.8, MPS) replace the
default per-parameter loop of ~7 kernels per tensor. The fused kernel also takes a `found_inf`
flag: when it is 1 the update and the step count are left unchanged, on the device. That lets the
trainer queue the optimizer step before it has looked at the loss, so a training step drains the
queue once (for its record), not twice.
"""

from __future__ import annotations

import torch

from geogui.engine.model import MoETransformer
from geogui.engine.rotation import DataRotator
from geogui.settings import RunSettings


def build_optimizers(model: MoETransformer, rotator: DataRotator,
                     run: RunSettings) -> tuple[torch.optim.AdamW, torch.optim.Adam]:
    """AdamW on the model (no decay on biases and norms), Adam on the rotator's angles."""
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    model_optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": run.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=run.learning_rate, betas=(0.9, 0.95), fused=True,
    )
    rotation_optimizer = torch.optim.Adam(rotator.parameters(), lr=run.rotation_learning_rate, fused=True)
    return model_optimizer, rotation_optimizer


def make_fused(optimizer: torch.optim.Optimizer) -> None:
    """After `load_state_dict`: a checkpoint's parameter groups replace the optimizer's own, flags
    included, and checkpoints written before the optimizers were fused say `fused=None`. The fused
    kernel also wants its step counts on the parameters' device."""
    for group in optimizer.param_groups:
        group["fused"], group["foreach"] = True, None
        for param in group["params"]:
            state = optimizer.state.get(param, {})
            step = state.get("step")
            if isinstance(step, torch.Tensor) and step.device != param.device:
                state["step"] = step.to(param.device, torch.float32)


def step_unless(optimizer: torch.optim.Optimizer, skip: torch.Tensor) -> None:
    """optimizer.step(), skipped on the device where `skip` (a 0-dim float32 tensor) is 1."""
    optimizer.found_inf = skip  # read by the fused kernels (the protocol torch.amp.GradScaler uses)
    try:
        optimizer.step()
    finally:
        del optimizer.found_inf
