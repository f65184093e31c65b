"""Typed records the trainer yields. They cross threads, so they hold only plain values:
ints, floats, strings and numpy arrays, never tensors and never dicts keyed by metric name."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any, Iterator, Union

import numpy as np


def _finite_or_none(value: float) -> float | None:
    # JSON has no NaN/inf; a non-finite value is written as null rather than silently as 0.
    return float(value) if math.isfinite(value) else None


@dataclass(frozen=True, slots=True)
class BatchRecord:
    """Everything measured for one training batch."""

    step: int  # 1-based index of this batch in the run
    epoch: float  # training tokens seen / training tokens in the corpus
    mode: str  # Mode value this batch was trained with
    penalty_weight: float
    batch_time_s: float  # forward + backward + optimizer, device synchronised before reading the clock
    data_time_s: float  # time to draw and move the batch
    loss: float  # the total loss that was back-propagated
    task_loss: float  # cross-entropy (of the mean presentation logits in geometric mode)
    aux_loss: float  # weighted router load-balancing loss (0 when routing is forced)
    penalty: float  # penalty_weight * mean(angles**2) (0 in standard)
    orthogonality: float  # weighted orthogonality term (geometric only, else 0)
    specialization: float  # weighted specialization term (geometric only, else 0)
    lr_model: float
    lr_rotation: float  # 0 when the rotator is not being stepped (standard)
    rotation_angles: np.ndarray | None  # (P, r) radians; None in standard
    expert_load: np.ndarray  # (E + G,) fraction of routed slots per expert, mean over layers
    ghost_activation: np.ndarray  # (G,) 0 = dormant .. 1 = fully awake, mean over layers
    saturation: float  # smoothed fraction of primary routed slots over capacity, mean over layers
    tokens_per_s: float
    tokens_seen: int
    memory_bytes: float  # allocated on the accelerator; resident set size on CPU
    wall_time_s: float  # seconds since the run started
    # what the device's driver holds (MPS: allocator caches and compiled graphs too; CUDA: reserved
    # by the caching allocator); 0 on CPU, NaN in runs logged before it was measured
    driver_memory_bytes: float = 0.0

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, np.ndarray):
                value = [[_finite_or_none(v) for v in row] for row in value.tolist()] if value.ndim == 2 else [
                    _finite_or_none(v) for v in value.tolist()
                ]
            elif isinstance(value, float):
                value = _finite_or_none(value)
            out[f.name] = value
        out["kind"] = "batch"
        return out


@dataclass(frozen=True, slots=True)
class EvalRecord:
    """Held-out loss after `step` batches."""

    step: int
    loss: float
    perplexity: float

    def to_json(self) -> dict[str, Any]:
        return {"kind": "eval", "step": self.step, "loss": _finite_or_none(self.loss),
                "perplexity": _finite_or_none(self.perplexity)}


@dataclass(frozen=True, slots=True)
class ModeChange:
    """The mode or penalty weight changed; takes effect from batch `step` on."""

    step: int
    mode: str
    penalty_weight: float
    previous_mode: str
    previous_penalty_weight: float

    def to_json(self) -> dict[str, Any]:
        return {"kind": "mode_change", "step": self.step, "mode": self.mode,
                "penalty_weight": self.penalty_weight, "previous_mode": self.previous_mode,
                "previous_penalty_weight": self.previous_penalty_weight}


@dataclass(frozen=True, slots=True)
class RunEvent:
    """Something the user must be told: a device fallback, a non-finite loss, a pause."""

    step: int
    kind: str  # "device_fallback" | "nonfinite_loss" | "paused" | "resumed" | "ghost_woke"
    message: str

    def to_json(self) -> dict[str, Any]:
        return {"kind": "event", "step": self.step, "event": self.kind, "message": self.message}


@dataclass(frozen=True, slots=True)
class RunStarted:
    """The model is built and training is about to begin."""

    device: str  # the device actually used
    requested_device: str
    parameters: int
    total_steps: int
    train_tokens: int
    val_tokens: int
    data_source: str
    presentations: int
    rotation_dimensions: int
    expert_names: tuple[str, ...] = field(default_factory=tuple)
    start_step: int = 0  # steps already done when this run (or resumed run) began

    def to_json(self) -> dict[str, Any]:
        return {"kind": "started", "device": self.device, "requested_device": self.requested_device,
                "parameters": self.parameters, "total_steps": self.total_steps,
                "train_tokens": self.train_tokens, "val_tokens": self.val_tokens,
                "data_source": self.data_source, "presentations": self.presentations,
                "rotation_dimensions": self.rotation_dimensions, "expert_names": list(self.expert_names),
                "start_step": self.start_step}


@dataclass(frozen=True, slots=True)
class RunFinished:
    """The run ended; status is "finished" (all steps done) or "stopped" (asked to stop)."""

    step: int
    status: str

    def to_json(self) -> dict[str, Any]:
        return {"kind": "finished", "step": self.step, "status": self.status}


TrainerEvent = Union[RunStarted, BatchRecord, EvalRecord, ModeChange, RunEvent, RunFinished]
LoggedRecord = Union[BatchRecord, EvalRecord, ModeChange, RunEvent]


def _float(value: Any) -> float:
    return math.nan if value is None else float(value)


def _array(value: Any) -> np.ndarray:
    return np.array([[_float(v) for v in row] for row in value] if value and isinstance(value[0], list)
                    else [_float(v) for v in (value or [])], dtype=np.float64)


def record_from_json(data: dict[str, Any]) -> LoggedRecord | None:
    """The typed record for one metrics.jsonl line (None for lines of other kinds).

    A value written as null (it was not finite) comes back as NaN, never as 0."""
    kind = data.get("kind")
    if kind == "batch":
        values = {}
        for f in fields(BatchRecord):
            raw = data.get(f.name)
            if f.name in ("step", "tokens_seen"):
                values[f.name] = int(raw or 0)
            elif f.name == "mode":
                values[f.name] = str(raw)
            elif f.name == "rotation_angles":
                values[f.name] = None if raw is None else _array(raw)
            elif f.name in ("expert_load", "ghost_activation"):
                values[f.name] = _array(raw)
            else:
                values[f.name] = _float(raw)
        return BatchRecord(**values)
    if kind == "eval":
        return EvalRecord(int(data["step"]), _float(data.get("loss")), _float(data.get("perplexity")))
    if kind == "mode_change":
        return ModeChange(int(data["step"]), data["mode"], float(data["penalty_weight"]), data["previous_mode"],
                          float(data["previous_penalty_weight"]))
    if kind == "event":
        return RunEvent(int(data["step"]), data["event"], data.get("message", ""))
    return None


def split_at_mode_changes(records) -> Iterator[list[BatchRecord | EvalRecord] | ModeChange]:
    """Logged records as runs of consecutive batch/eval records and the mode changes between them, in
    order (other events dropped): how a replayed history is fed to the plots like a live run."""
    chunk: list[BatchRecord | EvalRecord] = []
    for record in records:
        if isinstance(record, (BatchRecord, EvalRecord)):
            chunk.append(record)
        elif isinstance(record, ModeChange):
            if chunk:
                yield chunk
                chunk = []
            yield record
    if chunk:
        yield chunk
