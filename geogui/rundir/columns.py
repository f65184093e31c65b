"""A run's metrics.jsonl as numpy columns (`RunColumns`): what the reader (`reader`) returns and
the plots, exports and the Runs panel take, without a Python object per batch.

A million-step run is a gigabyte of JSON lines; holding each batch as a BatchRecord would take
gigabytes. The columns are 19 float64 scalars and three float32 matrices, about 330 bytes per
batch at the default model. The matrices are float32 because the angles are computed in float32
and every other matrix value is written with float32's precision (see metrics.py), so nothing
shown is lost; in float64 they alone would take 350 bytes per batch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from geogui.engine.metrics import BatchRecord, EvalRecord, LoggedRecord, ModeChange, RunEvent
from geogui.engine.samples import AccuracyRecord

SCALAR_FIELDS = (
    "step", "epoch", "batch_time_s", "data_time_s", "loss", "task_loss", "aux_loss", "penalty", "orthogonality",
    "specialization", "lr_model", "lr_rotation", "saturation", "tokens_per_s", "tokens_seen", "memory_bytes",
    "driver_memory_bytes", "wall_time_s", "penalty_weight",
)
# The per-layer routing matrices come last; runs logged before they were measured have NaN there.
MATRIX_FIELDS = ("rotation_angles", "expert_load", "ghost_activation", "expert_utilization", "routing_entropy",
                 "layer_overflow", "hidden_similarity")
NO_WIDTHS = (0,) * len(MATRIX_FIELDS)  # widths not known yet: each is told by the first row that has it

Progress = Callable[[int, int], None]  # (bytes read, bytes to read)
Cancel = Callable[[], bool]


class ReadCancelled(Exception):
    """The caller's cancel check said stop; nothing read so far is returned."""


@dataclass
class RunColumns:
    """A run's batches as columns (row i is the i-th batch still standing after every rewind), its
    evaluations as three columns, and its mode changes and events as lists.

    Scalars are float64 (NaN where the value was not finite or not logged, as in BatchRecord);
    `mode` holds indices into `modes`; the matrices are float32: `rotation_angles` (N, P * r),
    presentation-major (column p * r + i is angle i of presentation p), NaN rows for batches that
    had none (standard mode), `expert_load` (N, E + G), `ghost_activation` (N, G), and per MoE layer
    (NaN rows for batches without them: geometric, or logged before they were measured)
    `expert_utilization` (N, L * (E + G)) layer-major, `routing_entropy` (N, L), `layer_overflow`
    (N, L), and `hidden_similarity` (N, P * P), geometric only.
    `*_row` say where each evaluation, mode change and event was logged: before batch row `row`
    (so after row - 1), which is how `records()` interleaves them again."""

    step: np.ndarray
    epoch: np.ndarray
    batch_time_s: np.ndarray
    data_time_s: np.ndarray
    loss: np.ndarray
    task_loss: np.ndarray
    aux_loss: np.ndarray
    penalty: np.ndarray
    orthogonality: np.ndarray
    specialization: np.ndarray
    lr_model: np.ndarray
    lr_rotation: np.ndarray
    saturation: np.ndarray
    tokens_per_s: np.ndarray
    tokens_seen: np.ndarray
    memory_bytes: np.ndarray
    driver_memory_bytes: np.ndarray
    wall_time_s: np.ndarray
    penalty_weight: np.ndarray
    mode: np.ndarray
    modes: list[str]
    rotation_angles: np.ndarray
    expert_load: np.ndarray
    ghost_activation: np.ndarray
    expert_utilization: np.ndarray
    routing_entropy: np.ndarray
    layer_overflow: np.ndarray
    hidden_similarity: np.ndarray
    eval_step: np.ndarray
    eval_loss: np.ndarray
    eval_perplexity: np.ndarray
    mode_changes: list[ModeChange] = field(default_factory=list)
    events: list[RunEvent] = field(default_factory=list)
    skipped_lines: int = 0
    eval_row: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    mode_change_row: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    event_row: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    # Answer accuracies at evaluation steps (none for data without question/answer records).
    accuracies: list[AccuracyRecord] = field(default_factory=list)
    accuracy_row: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    def __len__(self) -> int:
        return len(self.step)

    @classmethod
    def empty(cls, widths: tuple[int, ...] | list[int] = NO_WIDTHS) -> "RunColumns":
        """No rows; the matrices `widths` wide (in MATRIX_FIELDS order)."""
        scalars = {name: np.zeros(0) for name in SCALAR_FIELDS}
        matrices = {name: np.zeros((0, width), dtype=np.float32) for name, width in zip(MATRIX_FIELDS, widths)}
        return cls(**scalars, **matrices, mode=np.zeros(0, dtype=np.int16), modes=[],
                   eval_step=np.zeros(0), eval_loss=np.zeros(0), eval_perplexity=np.zeros(0))

    @property
    def accuracy_step(self) -> np.ndarray:
        return np.array([a.step for a in self.accuracies], dtype=np.float64)

    @property
    def accuracy(self) -> np.ndarray:
        """The share of held-out answers that were right (0 … 1), at each of `accuracy_step`."""
        return np.array([a.fraction for a in self.accuracies], dtype=np.float64)

    def mode_names(self) -> list[str]:
        """The mode of every batch, as strings (a list of N references to `modes`)."""
        table = self.modes
        return [table[i] for i in self.mode.tolist()]

    def nbytes(self) -> int:
        return sum(getattr(self, name).nbytes for name in (*SCALAR_FIELDS, "mode", *MATRIX_FIELDS))

    def batch(self, row: int, presentations: int | None = None) -> BatchRecord:
        """Row `row` as a BatchRecord (angles (P, r) with P = `presentations`, default the number
        of experts; a row without angles has None)."""
        values: dict[str, Any] = {name: float(getattr(self, name)[row]) for name in SCALAR_FIELDS}
        values["step"], values["tokens_seen"] = int(values["step"]), int(values["tokens_seen"])
        angles = self.rotation_angles[row].astype(np.float64)
        if angles.size and not np.isnan(angles).all():
            p = presentations or self.expert_load.shape[1]
            values["rotation_angles"] = angles.reshape(p, -1) if p and angles.size % p == 0 else angles
        else:
            values["rotation_angles"] = None
        values["expert_load"] = self.expert_load[row].astype(np.float64)
        values["ghost_activation"] = self.ghost_activation[row].astype(np.float64)
        layers = self.routing_entropy.shape[1]
        for name, rows in (("expert_utilization", layers), ("routing_entropy", 0), ("layer_overflow", 0),
                           ("hidden_similarity", self.expert_load.shape[1])):
            value = getattr(self, name)[row].astype(np.float64)
            present = value.size and not np.isnan(value).all()
            values[name] = (value.reshape(rows, -1) if rows else value) if present else None
        return BatchRecord(mode=self.modes[int(self.mode[row])], **values)

    def records(self, presentations: int | None = None) -> list[LoggedRecord]:
        """Everything as typed records in the order it was logged (events and mode changes logged
        between the same two batches come evaluation first, then accuracy, mode changes, events).
        One object per batch: for code that has not moved to columns yet."""
        entries: list[tuple[int, int, int, LoggedRecord]] = []
        for i, (step, loss, perplexity) in enumerate(zip(self.eval_step.tolist(), self.eval_loss.tolist(),
                                                         self.eval_perplexity.tolist())):
            entries.append((int(self.eval_row[i]), 0, i, EvalRecord(int(step), loss, perplexity)))
        entries.extend((int(row), 0, len(self.eval_step) + i, item)
                       for i, (row, item) in enumerate(zip(self.accuracy_row.tolist(), self.accuracies)))
        for order, (rows, items) in enumerate(((self.mode_change_row, self.mode_changes),
                                               (self.event_row, self.events)), start=1):
            entries.extend((int(row), order, i, item) for i, (row, item) in enumerate(zip(rows.tolist(), items)))
        entries.sort(key=lambda entry: entry[:3])
        out: list[LoggedRecord] = []
        row = 0
        for at, _order, _index, item in entries:
            while row < min(at, len(self)):
                out.append(self.batch(row, presentations))
                row += 1
            out.append(item)
        out.extend(self.batch(r, presentations) for r in range(row, len(self)))
        return out
