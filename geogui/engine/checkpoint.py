"""Checkpoints: everything needed to continue a run exactly where it stopped.

A checkpoint holds the model, the rotator, both optimizers, the batch-order generator, torch's RNG
state, the step, the tokens seen, the current mode and penalty weight, and the model settings it was
built with. The learning-rate schedules are pure functions of the step, so the step is their state.

Writes are atomic (temporary file, fsync, rename): a crash mid-write leaves the previous
`latest.pt` intact, never a torn one. The checkpoint before it is kept as `previous.pt`: when a run
diverges right after a checkpoint, that checkpoint's weights are the ones that gave a non-finite
loss, and `discard_latest_checkpoint` falls back to the one before.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from geogui.atomic_write import atomic_write
from geogui.engine.state import TrainingState
from geogui.settings import Mode, ModelSettings

CHECKPOINT_DIR = "checkpoints"
LATEST = "latest.pt"
PREVIOUS = "previous.pt"
FORMAT_VERSION = 1
# Settings that decide the shapes of the saved tensors; the others (thresholds, weights) may change.
SHAPE_FIELDS = ("d_model", "n_layers", "n_heads", "seq_len", "expert_hidden", "num_experts",
                "num_ghost_experts", "rotation_dimensions")


class CheckpointError(ValueError):
    """A checkpoint that cannot be used; the message says why."""


def latest_checkpoint(run_dir: Path) -> Path | None:
    folder = Path(run_dir) / CHECKPOINT_DIR
    for name in (LATEST, PREVIOUS):  # previous.pt alone: a crash between its two renames
        if (folder / name).is_file():
            return folder / name
    return None


def discard_latest_checkpoint(run_dir: Path) -> None:
    """The latest checkpoint's weights diverged: the one before becomes the latest (or there is none)."""
    folder = Path(run_dir) / CHECKPOINT_DIR
    if (folder / PREVIOUS).is_file():
        os.replace(folder / PREVIOUS, folder / LATEST)
    else:
        (folder / LATEST).unlink(missing_ok=True)


def save_checkpoint(run_dir: Path, state: TrainingState, model_settings: ModelSettings) -> Path:
    folder = Path(run_dir) / CHECKPOINT_DIR
    folder.mkdir(parents=True, exist_ok=True)
    payload = {
        "format_version": FORMAT_VERSION,
        "step": state.step,
        "tokens_seen": state.tokens_seen,
        "mode": state.mode.value,
        "penalty_weight": state.penalty_weight,
        "model_settings": model_settings.model_dump(mode="json"),
        "model": state.model.state_dict(),
        "rotator": state.rotator.state_dict(),
        "model_optimizer": state.model_optimizer.state_dict(),
        "rotation_optimizer": state.rotation_optimizer.state_dict(),
        "batch_generator": state.batch_generator.get_state(),
        "torch_rng": torch.get_rng_state(),
    }
    # On a failed write the previous checkpoint stands, and no half-written copy takes space.
    with atomic_write(folder / LATEST, "wb", keep_previous=folder / PREVIOUS) as handle:
        torch.save(payload, handle)
    return folder / LATEST


def _read(path: Path) -> dict:
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a truncated or foreign file: say so, never crash the caller
        raise CheckpointError(f"{path}: not a readable checkpoint ({exc})") from None
    if not isinstance(payload, dict) or payload.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{path}: not a geogui checkpoint of format {FORMAT_VERSION}")
    return payload


def read_checkpoint_step(path: Path) -> int:
    return int(_read(path)["step"])


def _check_shapes(path: Path, payload: dict, model_settings: ModelSettings) -> None:
    saved = payload["model_settings"]
    current = model_settings.model_dump(mode="json")
    differences = [f"{key} {saved.get(key)} -> {current[key]}" for key in SHAPE_FIELDS if saved.get(key) != current[key]]
    if differences:
        raise CheckpointError(f"{path}: the checkpoint's model differs from these settings: " + ", ".join(differences))


def check_checkpoint(path: Path, model_settings: ModelSettings) -> int:
    """The checkpoint's step, once it is known to load into a model built from `model_settings`;
    CheckpointError otherwise. Call it before touching the run directory."""
    payload = _read(path)
    _check_shapes(path, payload, model_settings)
    return int(payload["step"])


def load_checkpoint(path: Path, state: TrainingState, model_settings: ModelSettings) -> None:
    """Restore `state` (built from `model_settings`) from the checkpoint at `path`."""
    payload = _read(path)
    _check_shapes(path, payload, model_settings)
    device = next(state.model.parameters()).device
    state.model.load_state_dict(payload["model"])
    state.rotator.load_state_dict(payload["rotator"])
    state.model_optimizer.load_state_dict(payload["model_optimizer"])
    state.rotation_optimizer.load_state_dict(payload["rotation_optimizer"])
    state.batch_generator.set_state(payload["batch_generator"])
    torch.set_rng_state(payload["torch_rng"])
    state.step = int(payload["step"])
    state.tokens_seen = int(payload["tokens_seen"])
    state.mode = Mode(payload["mode"])
    state.penalty_weight = float(payload["penalty_weight"])
    state.model.to(device)
    state.rotator.to(device)
