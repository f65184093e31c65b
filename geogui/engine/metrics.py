"""Typed records the trainer yields. They cross threads, so they hold only plain values:
ints, floats, strings and numpy arrays, never tensors and never dicts keyed by metric name.

How a batch is written to metrics.jsonl (`batch_line`): an overnight run logs a million batches, so
the line is compact, about 900 bytes at the default model instead of 1,450:
- every float is the shortest decimal that reads back as the same float32. The device computes the
  loss terms and the angles in float32 (`DEVICE_FLOAT32`), so for them nothing is lost: reading a
  line back (`normalize_line`) gives exactly the float64 the trainer had. The host's own values
  (learning rates, durations, epoch, loads, activations, rates, memory) keep 7 significant digits
  (relative error under 6e-8) and read back as the decimal written: more than a plot, the status
  bar or TensorBoard (which stores float32) can show. A float with an integral value is written as
  an integer ("0", not "0.0");
- the clock, `wall_s`, is the exception: it grows all run long, so it keeps microseconds instead of
  relative precision;
- no spaces after separators; the longest names are shortened (`BATCH_LINE_NAMES`: the TensorBoard
  tags' words) and the angles are one flat, presentation-major list of P * r values (P is the
  length of `loads`: one presentation per expert).
Lines written before this format (long names, nested angles, full float64 digits) still read the
same, and a line in the compact form is told apart by its `loads` field.

Every record says what it is in `kind` (`RecordKind`, the line's "kind" on disk). A RunEvent's own
kind of news is `event` (`EventKind`; a kind this version does not know still reads, as a string).
"Resumed" has three meanings, kept apart here: a `Rewind` line (written "resumed" on disk) says
that the run was continued from its checkpoint at `step`, which supersedes what was logged past
it; `EventKind.CHECKPOINT_LOADED` is the trainer saying so as it starts; `EventKind.UNPAUSED` ends
a pause (written "resumed"). The run's own list of continuations is in meta.json
(`geogui.rundir.meta.RunMeta.continuations`).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, fields
from geogui.str_enum import StrEnum
from typing import TYPE_CHECKING, Any, ClassVar, Iterator, Literal, Union

import numpy as np

if TYPE_CHECKING:
    from geogui.engine.samples import AccuracyRecord, SampleRecord  # it imports this module


class RecordKind(StrEnum):
    """A metrics.jsonl line's "kind"; the values are what every version has written."""

    BATCH = "batch"
    EVAL = "eval"
    MODE_CHANGE = "mode_change"
    EVENT = "event"
    FINISHED = "finished"
    REWIND = "resumed"
    STARTED = "started"  # never logged: what RunStarted tells the RunLog goes to meta.json
    ACCURACY = "accuracy"  # held-out answers checked at an evaluation step (`engine.samples`)
    SAMPLE = "sample"  # a generated sample: a line of samples.jsonl, not of metrics.jsonl


class EventKind(StrEnum):
    """What a RunEvent reports (its "event" on disk)."""

    DEVICE_FALLBACK = "device_fallback"
    PRECISION_FALLBACK = "precision_fallback"
    STEP_COMPILED = "step_compiled"
    STEP_RECOMPILED = "step_recompiled"
    COMPILE_FAILED = "compile_failed"
    CHECKPOINT_LOADED = "resumed_from_checkpoint"  # a continued run starts from its checkpoint
    CONTROL_REJECTED = "control_rejected"
    PAUSED = "paused"
    UNPAUSED = "resumed"  # the end of a pause, not a continuation
    NONFINITE_LOSS = "nonfinite_loss"
    GOOD_CHECKPOINT = "good_checkpoint"
    GHOST_WOKE = "ghost_woke"


def _finite_or_none(value: float) -> float | None:
    # JSON has no NaN/inf; a non-finite value is written as null rather than silently as 0.
    return float(value) if math.isfinite(value) else None


@dataclass(frozen=True, slots=True)
class BatchRecord:
    """Everything measured for one training batch."""

    kind: ClassVar[Literal[RecordKind.BATCH]] = RecordKind.BATCH
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
        out["kind"] = self.kind
        return out


@dataclass(frozen=True, slots=True)
class EvalRecord:
    """Held-out loss after `step` batches."""

    kind: ClassVar[Literal[RecordKind.EVAL]] = RecordKind.EVAL
    step: int
    loss: float
    perplexity: float

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "step": self.step, "loss": _finite_or_none(self.loss),
                "perplexity": _finite_or_none(self.perplexity)}


@dataclass(frozen=True, slots=True)
class ModeChange:
    """The mode or penalty weight changed; takes effect from batch `step` on."""

    kind: ClassVar[Literal[RecordKind.MODE_CHANGE]] = RecordKind.MODE_CHANGE
    step: int
    mode: str
    penalty_weight: float
    previous_mode: str
    previous_penalty_weight: float

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "step": self.step, "mode": self.mode,
                "penalty_weight": self.penalty_weight, "previous_mode": self.previous_mode,
                "previous_penalty_weight": self.previous_penalty_weight}


@dataclass(frozen=True, slots=True)
class RunEvent:
    """Something the user must be told: a device fallback, a non-finite loss, a pause."""

    kind: ClassVar[Literal[RecordKind.EVENT]] = RecordKind.EVENT
    step: int
    event: EventKind | str  # a kind written by another version stays a string
    message: str

    def __post_init__(self) -> None:
        if not isinstance(self.event, EventKind) and self.event in EventKind._value2member_map_:
            object.__setattr__(self, "event", EventKind(self.event))

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "step": self.step, "event": str(self.event), "message": self.message}


@dataclass(frozen=True, slots=True)
class Rewind:
    """The run was continued from its checkpoint at `step`: batches and evaluations logged before
    this line past `step` were trained again, and the continuation's supersede them (so do its
    mode changes: the checkpoint's mode is the one that went on)."""

    kind: ClassVar[Literal[RecordKind.REWIND]] = RecordKind.REWIND
    step: int

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "step": self.step}


@dataclass(frozen=True, slots=True)
class RunStarted:
    """The model is built and training is about to begin."""

    kind: ClassVar[Literal[RecordKind.STARTED]] = RecordKind.STARTED
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
    start_step: int = 0  # steps already done when this run (or its continuation) began


@dataclass(frozen=True, slots=True)
class RunFinished:
    """The run ended; status is "finished" (all steps done) or "stopped" (asked to stop)."""

    kind: ClassVar[Literal[RecordKind.FINISHED]] = RecordKind.FINISHED
    step: int
    status: str

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "step": self.step, "status": self.status}


TrainerEvent = Union[RunStarted, BatchRecord, EvalRecord, "AccuracyRecord", "SampleRecord", ModeChange, RunEvent,
                     RunFinished]
LoggedRecord = Union[BatchRecord, EvalRecord, "AccuracyRecord", ModeChange, RunEvent]
LogRecord = Union[LoggedRecord, Rewind, RunFinished]  # what a metrics.jsonl line can be


# BatchRecord field -> name in a compact batch line (fields not listed keep their name).
BATCH_LINE_NAMES = {
    "batch_time_s": "batch_s", "data_time_s": "data_s", "lr_rotation": "lr_rot", "rotation_angles": "angles",
    "expert_load": "loads", "ghost_activation": "ghosts", "memory_bytes": "mem_bytes",
    "driver_memory_bytes": "driver_bytes", "wall_time_s": "wall_s",
}
COMPACT_MARKER = "loads"  # present in every compact batch line, in no line of the older form
INT_FIELDS = ("step", "tokens_seen")
CLOCK_FIELDS = ("wall_time_s",)  # written to the microsecond rather than to float32 precision
# Computed in float32 on the device: a compact line's decimal widens back to the exact value.
DEVICE_FLOAT32 = ("loss", "task_loss", "aux_loss", "penalty", "orthogonality", "specialization", "rotation_angles")
_LINE_ORDER = ("step", "epoch", "mode", "penalty_weight", "batch_time_s", "data_time_s", "loss", "task_loss",
               "aux_loss", "penalty", "orthogonality", "specialization", "lr_model", "lr_rotation", "saturation",
               "tokens_per_s", "tokens_seen", "memory_bytes", "driver_memory_bytes", "wall_time_s", "expert_load",
               "ghost_activation", "rotation_angles")
_LONG_NAMES = {short: long for long, short in BATCH_LINE_NAMES.items()}


_SCALARS = tuple(name for name in _LINE_ORDER if name not in (*INT_FIELDS, *CLOCK_FIELDS, "mode", "expert_load",
                                                                "ghost_activation", "rotation_angles"))
_NOT_FINITE = ("nan", "inf", "-inf")


def _shortest(values: np.ndarray) -> list[float | int | None]:
    """Each value as the shortest decimal that reads back as the same float32 (one numpy call for
    them all); integral values as ints; None for what is not finite."""
    out: list[float | int | None] = []
    for text, value in zip(values.astype(np.float32).astype(str).tolist(), values.tolist()):
        if text in _NOT_FINITE:  # finite beyond float32's range keeps its float64 rather than become inf
            out.append(value if math.isfinite(value) else None)
            continue
        short = float(text)
        out.append(int(short) if short.is_integer() and abs(short) < 1e15 else short)
    return out


def batch_line(record: BatchRecord) -> str:
    """The record as one compact metrics.jsonl line (without the newline); see the module docstring."""
    angles = record.rotation_angles
    arrays = [np.asarray(record.expert_load, dtype=np.float64).ravel(),
              np.asarray(record.ghost_activation, dtype=np.float64).ravel(),
              np.zeros(0) if angles is None else np.asarray(angles, dtype=np.float64).ravel()]
    scalars = np.array([getattr(record, name) for name in _SCALARS], dtype=np.float64)
    values = _shortest(np.concatenate([scalars, *arrays]))
    shorts = dict(zip(_SCALARS, values))
    out: dict[str, Any] = {"kind": RecordKind.BATCH.value}
    cut = len(_SCALARS)
    for name in _LINE_ORDER:
        key = BATCH_LINE_NAMES.get(name, name)
        if name in INT_FIELDS:
            out[key] = int(getattr(record, name))
        elif name == "mode":
            out[key] = str(record.mode)
        elif name in CLOCK_FIELDS:
            value = float(getattr(record, name))
            out[key] = round(value, 6) if math.isfinite(value) else None
        elif name in shorts:
            out[key] = shorts[name]
        else:
            size = len(arrays[("expert_load", "ghost_activation", "rotation_angles").index(name)])
            out[key] = None if name == "rotation_angles" and angles is None else values[cut:cut + size]
            cut += size
    return json.dumps(out, separators=(",", ":"))


_FLOAT32_MAX = float(np.finfo(np.float32).max)


def _widen(value: Any) -> Any:
    # The float64 of the float32 a compact line's decimal stands for: the trainer's own value.
    if value is None or abs(value) > _FLOAT32_MAX:  # beyond float32: written as a float64 (_short_float)
        return None if value is None else float(value)
    return float(np.float32(value))


def _as_float(value: Any) -> Any:
    return None if value is None else float(value)


def normalize_line(data: dict[str, Any]) -> dict[str, Any]:
    """A metrics.jsonl line as the long-form dict `BatchRecord.to_json` writes: a compact batch line
    gets the long names, nested (P, r) angles, floats (not integers) and the device's values widened
    back to their float32; every other line is returned as it is."""
    if data.get("kind") != RecordKind.BATCH or COMPACT_MARKER not in data:
        return data
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = _LONG_NAMES.get(key, key)
        convert = _widen if name in DEVICE_FLOAT32 else _as_float
        if name in INT_FIELDS or isinstance(value, (str, bool)) or name == "kind":
            out[name] = value
        elif isinstance(value, list):
            out[name] = [convert(v) for v in value]
        elif isinstance(value, (int, float)):
            out[name] = convert(value)
        else:
            out[name] = value
    angles, loads = out.get("rotation_angles"), out.get("expert_load")
    if angles and loads and len(angles) % len(loads) == 0:
        width = len(angles) // len(loads)
        out["rotation_angles"] = [angles[i:i + width] for i in range(0, len(angles), width)]
    return out


def _float(value: Any) -> float:
    return math.nan if value is None else float(value)


def _array(value: Any) -> np.ndarray:
    return np.array([[_float(v) for v in row] for row in value] if value and isinstance(value[0], list)
                    else [_float(v) for v in (value or [])], dtype=np.float64)


def _batch_from_json(data: dict[str, Any]) -> BatchRecord:
    values = {}
    for f in fields(BatchRecord):
        raw = data.get(f.name)
        if f.name in INT_FIELDS:
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


def _event_from_json(data: dict[str, Any]) -> RunEvent:
    event = data["event"]
    if not isinstance(event, str):
        raise TypeError(f"an event's kind is a string, not {event!r}")
    return RunEvent(int(data["step"]), event, data.get("message", ""))


_FROM_JSON = {
    RecordKind.BATCH: _batch_from_json,
    RecordKind.EVAL: lambda data: EvalRecord(int(data["step"]), _float(data.get("loss")),
                                             _float(data.get("perplexity"))),
    RecordKind.MODE_CHANGE: lambda data: ModeChange(int(data["step"]), data["mode"], float(data["penalty_weight"]),
                                                    data["previous_mode"], float(data["previous_penalty_weight"])),
    RecordKind.EVENT: _event_from_json,
    RecordKind.REWIND: lambda data: Rewind(int(data["step"])),
    RecordKind.FINISHED: lambda data: RunFinished(int(data["step"]), str(data.get("status"))),
}


def record_from_json(data: dict[str, Any]) -> LogRecord | None:
    """The typed record for one metrics.jsonl line (None for a line of a kind no record has).

    A value written as null (it was not finite) comes back as NaN, never as 0. Compact batch lines
    and the older long form both read (`normalize_line`). A line that claims a kind but lacks its
    fields raises KeyError, TypeError or ValueError. Accuracy lines: `AccuracyRecord.from_json`."""
    data = normalize_line(data)
    kind = data.get("kind")
    reader = _FROM_JSON.get(kind) if isinstance(kind, str) else None
    return None if reader is None else reader(data)


def split_at_mode_changes(records) -> Iterator[list[BatchRecord | EvalRecord] | ModeChange]:
    """Logged records as runs of consecutive batch/eval/accuracy records and the mode changes between
    them, in order (other events dropped): how a replayed history is fed to the plots like a live run."""
    chunk: list[BatchRecord | EvalRecord] = []
    for record in records:
        if isinstance(record, (BatchRecord, EvalRecord)) or record.kind == RecordKind.ACCURACY:
            chunk.append(record)
        elif isinstance(record, ModeChange):
            if chunk:
                yield chunk
                chunk = []
            yield record
    if chunk:
        yield chunk
