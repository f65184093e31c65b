"""A run's checkpoint loaded into a model for sampling: the one loader of geogui-sample and the app's
Samples tab. Imports torch only when a run is loaded, so the app's GUI thread may import this module."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ValidationError

from geogui.rundir.layout import RunLogError
from geogui.rundir.meta import RunMeta, read_meta
from geogui.settings import DataSettings, DeviceSettings, SamplingSettings, Settings, describe_validation_error

if TYPE_CHECKING:
    from geogui.engine.state import TrainingState

CHECKPOINTS = ("latest", "previous")  # which checkpoint: the newest, or the one before it


class SamplingError(ValueError):
    """The run cannot be sampled; the message says why, in one line."""


@dataclass
class SamplingRun:
    meta: RunMeta
    state: "TrainingState"
    checkpoint: Path

    def data_settings(self) -> DataSettings:
        try:
            return DataSettings.model_validate(self.meta.settings.get("data") or {})
        except ValidationError as exc:
            raise SamplingError(f"the run's data cannot be read: {describe_validation_error(exc)}") from None

    def validation_text(self) -> str:
        from geogui.engine.data import DataError, decode, load_corpus

        try:
            corpus = load_corpus(self.data_settings(), self.state.model.cfg.seq_len)
        except DataError as exc:
            raise SamplingError(str(exc)) from None
        return decode(corpus.val)


def run_sampling_settings(meta: RunMeta) -> dict:
    """The run's saved sampling settings that this version knows (raw: the caller validates)."""
    saved = meta.settings.get("sampling")
    raw = dict(saved) if isinstance(saved, dict) else {}
    return {key: value for key, value in raw.items() if key in SamplingSettings.model_fields}


def load_sampling_run(run_dir: Path, which: str = "latest", device: str = "cpu") -> SamplingRun:
    """The run's model and rotator with the weights of its `which` checkpoint."""
    from geogui.engine.checkpoint import CHECKPOINT_DIR, LATEST, PREVIOUS, CheckpointError, load_checkpoint
    from geogui.engine.device import choose_device
    from geogui.engine.state import build_state

    try:
        meta = read_meta(run_dir)
        model_settings = meta.model_settings()
    except RunLogError as exc:
        raise SamplingError(str(exc)) from None
    except ValueError as exc:
        raise SamplingError(f"{run_dir}: the run's model settings cannot be used ({exc})") from None
    checkpoint = Path(run_dir) / CHECKPOINT_DIR / {"latest": LATEST, "previous": PREVIOUS}[which]
    if not checkpoint.is_file():
        raise SamplingError(f"{run_dir}: no {which} checkpoint ({checkpoint.name} is missing); "
                            "a run writes one every checkpoint interval and when it ends")
    settings = Settings(model=model_settings, device=DeviceSettings(device=device))
    state = build_state(settings, choose_device(device).device)
    try:
        load_checkpoint(checkpoint, state, model_settings)
    except CheckpointError as exc:
        raise SamplingError(str(exc)) from None
    return SamplingRun(meta, state, checkpoint)
