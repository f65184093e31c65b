"""Typed records the trainer yields. They cross threads, so they hold only plain values:
ints, floats, strings and numpy arrays, never tensors and never dicts keyed by metric name.

How each record is written as a metrics.jsonl line, and read back: `geogui.engine.log_lines`.

Every record says what it is in `kind` (`RecordKind`, the line's "kind" on disk). A RunEvent's own
kind of news is `event` (`EventKind`; a kind this version does not know still reads, as a string).
"Resumed" has three meanings, kept apart here: a `Rewind` line (written "resumed" on disk) says
that the run was continued from its checkpoint at `step`, which supersedes what was logged past
it; `EventKind.CHECKPOINT_LOADED` is the trainer saying so as it starts; `EventKind.UNPAUSED` ends
a pause (written "resumed"). The run's own list of continuations is in meta.json
(`geogui.rundir.meta.RunMeta.continuations`).
"""

from __future__ import annotations

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
    EXPERT_DEAD = "expert_dead"  # a routable expert has had no token for `run.dead_expert_steps` steps


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
    # Per MoE layer (`engine.routing_stats`): None where routing was forced (geometric), and in runs
    # logged before they were measured.
    expert_utilization: np.ndarray | None = None  # (L, E + G) slots / fair share; NaN: a dormant ghost
    routing_entropy: np.ndarray | None = None  # (L,) normalised entropy of the layer's load
    layer_overflow: np.ndarray | None = None  # (L,) fraction of the layer's slots over capacity
    hidden_similarity: np.ndarray | None = None  # (P, P) geometric only: mean |cos| of hidden states

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
    # The prompt a sample of this run continues when none is given (`RunSamples.prompt`: the first
    # held-out question in the training format) and that question's answer ("" and None for plain text).
    heldout_prompt: str = ""
    heldout_answer: str | None = None
    max_rotation: float | None = None  # the bound of the rotation angles (model settings)


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
