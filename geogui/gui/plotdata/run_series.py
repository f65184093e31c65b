"""Everything plotted for one run, as numpy columns in bounded memory. No Qt here: the plots read it.

The worker delivers BatchRecord/EvalRecord lists; `append` turns them into columns in one pass so
the redraw timer only has to hand views to pyqtgraph. The batch columns live in a `LevelOfDetail`
store: every batch up to its capacity, then (max, min) bins that keep every extreme, so an
overnight run holds no more than a short one. The smoothed loss (TensorBoard's debiased EMA,
restarted at every mode segment) is computed from each batch's exact loss as rows arrive (and so
is each loss term's, NaN where the batch's mode does not compute it: see `loss_terms`); a new
smoothing weight is applied to the stored rows (exactly, until the store has coarsened). The mean
batch time of each mode is summed exactly, whatever the store keeps.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from geogui.engine.metrics import (BatchRecord, EvalRecord, EventKind, LoggedRecord, ModeChange, RunEvent,
                                   split_at_mode_changes)
from geogui.engine.samples import AccuracyRecord
from geogui.gui.plotdata.growable import GrowableArray
from geogui.gui.plotdata.level_of_detail import DEFAULT_CAPACITY, LevelOfDetail
from geogui.gui.plotdata.loss_terms import LOSS_TERMS, computed_only, terms_of_columns, terms_of_records
from geogui.gui.plotdata.rotation_series import MAP_CAPACITY, RotationSeries
from geogui.gui.plotdata.routing_series import RoutingSeries, routing_of_columns, routing_of_records
from geogui.gui.plotdata.smoothing import DEFAULT_WEIGHT, ColumnsEma, SegmentedEma, debiased_ema, debiased_ema_columns

if TYPE_CHECKING:
    from geogui.rundir.columns import RunColumns

MIB = 1024.0 * 1024.0


@dataclass
class BatchColumns:
    """Batches as columns, one row each: what `RunSeries.append_batches` takes."""

    step: np.ndarray
    wall_time_s: np.ndarray
    tokens_seen: np.ndarray
    batch_time_s: np.ndarray
    loss: np.ndarray
    lr_model: np.ndarray
    lr_rotation: np.ndarray
    tokens_per_s: np.ndarray
    memory_bytes: np.ndarray
    rotation_angles: np.ndarray  # (N, P * r), NaN rows where a batch had none
    expert_load: np.ndarray  # (N, E)
    ghost_activation: np.ndarray  # (N, G)
    # -- the loss terms and the penalty weight (the Loss terms tab) --
    loss_terms: np.ndarray  # (N, 5) as logged, in LOSS_TERMS order (task, aux, penalty, orthogonality, specialization)
    penalty_weight: np.ndarray
    mode: list[str]
    # -- per MoE layer (the Routing tab): (N, L * (E + G)), (N, L), (N, L); NaN rows, or none, where not measured --
    expert_utilization: np.ndarray | None = None
    routing_entropy: np.ndarray | None = None
    layer_overflow: np.ndarray | None = None


@dataclass(frozen=True)
class ModeSegment:
    start_step: float  # first step trained in this mode
    mode: str


class RunSeries:
    def __init__(self, presentations: int, rotation_dimensions: int, smoothing: float = DEFAULT_WEIGHT,
                 capacity: int = DEFAULT_CAPACITY) -> None:
        self.presentations = presentations
        self.rotation_dimensions = rotation_dimensions
        self._ema = SegmentedEma(smoothing)
        self._segments_smoothed = 0  # mode segments whose first batch the smoother has already seen
        self.store = LevelOfDetail(capacity)
        self.step = self.store.column(x=True)
        # The other x axes: training seconds (summed over resumes, each of which restarts its clock)
        # and tokens seen.
        self.wall_time_s = self.store.column(x=True)
        self.tokens_seen = self.store.column(x=True)
        self._wall_offset = 0.0
        self._last_wall = 0.0
        self.batch_ms = self.store.column()
        self.loss = self.store.column()
        self.loss_ema = self.store.column()
        self.lr_model = self.store.column()
        self.lr_rotation = self.store.column()
        self.tokens_per_s = self.store.column()
        self.memory_mib = self.store.column()
        # (P * r) columns, presentation-major: column p * r + i is angle i of presentation p. The wide
        # columns are float32: exact to 7 digits, which is more than a plot or its readout shows.
        self.angles = self.store.column(width=presentations * rotation_dimensions, dtype=np.float32)
        # -- the loss terms and the penalty weight (the Loss terms tab) --
        # (N, 5) in LOSS_TERMS order, NaN where the batch's mode does not compute the term (a gap, not
        # a zero), and smoothed as the loss is (per mode segment). float32 like the other wide columns:
        # the device computes the terms in float32, so the values are exactly those logged.
        self.loss_terms = self.store.column(width=len(LOSS_TERMS), dtype=np.float32)
        self.loss_terms_ema = self.store.column(width=len(LOSS_TERMS), dtype=np.float32)
        self._terms_ema = ColumnsEma(len(LOSS_TERMS), smoothing)
        self.penalty_weight = self.store.column()
        # Widths of the expert columns come from the first record: the record is the source of truth.
        self.expert_load: GrowableArray | None = None
        self.ghost_activation: GrowableArray | None = None
        # Per-layer routing (the Routing tab); its curve columns are the store's last, made once a batch has them.
        self.routing = RoutingSeries(self.store, capacity)
        self._mode_batch_ms: dict[str, list[float]] = {}  # mode -> [sum of batch ms, batches]
        self.eval_step = GrowableArray()
        self.eval_loss = GrowableArray()
        # The share of held-out answers right (0 … 1) at evaluation steps; empty for data without records.
        self.accuracy_step = GrowableArray()
        self.accuracy = GrowableArray()
        # Batches whose loss was not finite: drawn as markers, never folded into the smoothed loss.
        self.nonfinite_step = GrowableArray()
        self.segments: list[ModeSegment] = []
        self.mode_changes: list[ModeChange] = []
        self.pauses: list[int] = []  # the step after which training paused, once per pause
        # Per step, for the Rotation tab's maps: the angles and the hidden-state similarity (bin means).
        self.rotation = RotationSeries(presentations, rotation_dimensions, min(capacity, MAP_CAPACITY))

    def __len__(self) -> int:
        """Rows held (every batch's, or two per bin once the store has coarsened)."""
        return len(self.step)

    @property
    def bin_size(self) -> int:
        """Batches per stored bin: 1 while every batch is its own row."""
        return self.store.bin_size

    @property
    def batches(self) -> int:
        return self.store.batches

    def nbytes(self) -> int:
        """Bytes the series holds (the batch columns' buffers and the evaluation columns)."""
        others = (self.eval_step, self.eval_loss, self.nonfinite_step, self.accuracy_step, self.accuracy)
        return self.store.nbytes() + self.routing.nbytes() + self.rotation.nbytes() + sum(
            column.nbytes() for column in others)

    def mean_batch_ms(self, mode: str | None = None) -> float:
        """The mean batch time (ms) of every batch trained in `mode` (all modes: None), exactly."""
        totals = [t for m, t in self._mode_batch_ms.items() if mode is None or m == mode]
        count = sum(n for _, n in totals)
        return sum(s for s, _ in totals) / count if count else float("nan")

    def modes_trained(self) -> list[str]:
        """The modes batches were trained in, in the order they first appeared."""
        return list(self._mode_batch_ms)

    @property
    def smoothing(self) -> float:
        return self._ema.weight

    def set_smoothing(self, smoothing: float) -> None:
        """Change the EMA weight (0 = off, towards 1 = smoother) and recompute the whole smoothed column."""
        self._ema = SegmentedEma(smoothing)
        self.loss_ema.clear()
        self._segments_smoothed = len(self.segments)
        self.loss_ema.extend(debiased_ema(self.loss.view(), smoothing, self.segment_starts()))
        self._terms_ema = ColumnsEma(len(LOSS_TERMS), smoothing)
        self.loss_terms_ema.clear()
        self.loss_terms_ema.extend(debiased_ema_columns(self.loss_terms.view(), smoothing, self.segment_starts()))

    def segment_starts(self) -> np.ndarray:
        """The row index at which each mode segment begins."""
        starts = [segment.start_step for segment in self.segments]
        return np.searchsorted(self.step.view(), starts) if starts else np.zeros(0, dtype=np.intp)

    def segment_index(self, rows: np.ndarray) -> np.ndarray:
        """For each row index, the index of its mode segment in `segments`."""
        return np.maximum(np.searchsorted(self.segment_starts(), rows, side="right") - 1, 0)

    def mode_at(self, row: int) -> str | None:
        if not self.segments or not 0 <= row < len(self):
            return None
        return self.segments[int(self.segment_index(np.array([row]))[0])].mode

    def x_column(self, axis: str) -> GrowableArray:
        """The x values of the batches: "step", "wall_time" (seconds) or "tokens"."""
        return {"step": self.step, "wall_time": self.wall_time_s, "tokens": self.tokens_seen}[axis]

    def x_at_steps(self, axis: str, steps: np.ndarray) -> np.ndarray:
        """Steps (evaluations, mode changes) placed on `axis`, interpolated between batches."""
        steps = np.asarray(steps, dtype=np.float64)
        if axis == "step" or not len(self):
            return steps
        return np.interp(steps, self.step.view(), self.x_column(axis).view())

    def step_at_x(self, axis: str, x: float) -> float | None:
        """The step at `x` on `axis`, interpolated between batches (the inverse of x_at_steps); None
        without batches."""
        if not len(self):
            return None
        return float(x) if axis == "step" else float(np.interp(x, self.x_column(axis).view(), self.step.view()))

    def accuracy_per_row(self) -> np.ndarray:
        """Each row's latest accuracy (NaN before the first, and in a mode segment that has none
        yet): a step curve of one value per batch, for comparing runs."""
        steps, values = self.accuracy_step.view(), self.accuracy.view()
        rows = self.step.view()
        at = np.searchsorted(steps, rows, side="right") - 1
        out = np.where(at >= 0, values[np.maximum(at, 0)] if len(values) else np.nan, np.nan)
        starts = np.array([segment.start_step for segment in self.segments])
        if len(starts) and len(steps):  # an accuracy measured in the previous mode does not carry over
            segment_of_row = np.searchsorted(starts, rows, side="right")
            segment_of_value = np.searchsorted(starts, steps[np.maximum(at, 0)], side="right")
            out[segment_of_row != segment_of_value] = np.nan
        return out

    def append(self, records: list[BatchRecord | EvalRecord | AccuracyRecord]) -> None:
        batches = [r for r in records if isinstance(r, BatchRecord)]
        for record in records:
            if isinstance(record, EvalRecord):
                self.eval_step.append(record.step)
                self.eval_loss.append(record.loss)
            elif isinstance(record, AccuracyRecord):
                self.accuracy_step.append(record.step)
                self.accuracy.append(record.fraction)
        if not batches:
            return
        no_angles = np.full(self.presentations * self.rotation_dimensions, np.nan)
        self.append_batches(BatchColumns(
            step=np.array([r.step for r in batches], dtype=np.float64),
            wall_time_s=np.array([r.wall_time_s for r in batches]),
            tokens_seen=np.array([r.tokens_seen for r in batches], dtype=np.float64),
            batch_time_s=np.array([r.batch_time_s for r in batches]),
            loss=np.array([r.loss for r in batches], dtype=np.float64),
            lr_model=np.array([r.lr_model for r in batches]), lr_rotation=np.array([r.lr_rotation for r in batches]),
            tokens_per_s=np.array([r.tokens_per_s for r in batches]),
            memory_bytes=np.array([r.memory_bytes for r in batches]),
            # Standard mode has no angles: a NaN row leaves a gap in the curves instead of a fake zero.
            rotation_angles=np.array([no_angles if r.rotation_angles is None else r.rotation_angles.ravel()
                                      for r in batches]).reshape(len(batches), -1),
            expert_load=np.array([r.expert_load for r in batches]),
            ghost_activation=np.array([r.ghost_activation for r in batches]).reshape(len(batches), -1),
            loss_terms=terms_of_records(batches), penalty_weight=np.array([r.penalty_weight for r in batches]),
            mode=[r.mode for r in batches], **routing_of_records(batches),
        ))
        self.rotation.append_records(batches)

    def append_batches(self, batches: "BatchColumns") -> None:
        """Consecutive batches of one mode segment (or of the segments already added), as columns."""
        count = len(batches.step)
        if not count:
            return
        if not self.segments:
            self.segments.append(ModeSegment(float(batches.step[0]), batches.mode[0]))
        if self.expert_load is None:
            self.expert_load = self.store.column(width=batches.expert_load.shape[1], dtype=np.float32)
            self.ghost_activation = self.store.column(width=batches.ghost_activation.shape[1], dtype=np.float32)
        steps, losses = batches.step, batches.loss
        restarts = []
        while self._segments_smoothed < len(self.segments) and (
                self.segments[self._segments_smoothed].start_step <= steps[-1]):
            restarts.append(int(np.searchsorted(steps, self.segments[self._segments_smoothed].start_step)))
            self._segments_smoothed += 1
        batch_ms = batches.batch_time_s * 1000.0
        modes = np.asarray(batches.mode)
        for mode in dict.fromkeys(batches.mode):  # in order of first appearance
            total = self._mode_batch_ms.setdefault(mode, [0.0, 0])
            mine = batch_ms[modes == mode]
            total[0] += float(mine.sum())
            total[1] += len(mine)
        self.nonfinite_step.extend(steps[~np.isfinite(losses)])
        terms = computed_only(batches.loss_terms, batches.mode)
        routing = self.routing.extend(batches)  # after the expert columns: its columns come last
        self.store.extend([  # in the order the columns were made
            steps, self._continuous_wall_time(batches.wall_time_s), batches.tokens_seen,
            batch_ms, losses, self._ema.extend(losses, restarts), batches.lr_model, batches.lr_rotation,
            batches.tokens_per_s, batches.memory_bytes / MIB, batches.rotation_angles,
            terms, self._terms_ema.extend(terms, restarts), batches.penalty_weight,
            batches.expert_load, batches.ghost_activation, *routing,
        ])

    def extend_columns(self, columns: "RunColumns", add_mode_change=None) -> None:
        """A run read as columns (geogui.rundir.columns), or what was appended to it since the
        last read: batches in stretches between mode changes, evaluations, mode changes (through
        `add_mode_change` when given: the plots draw a marker for each)."""
        add_mode_change = add_mode_change or self.add_mode_change
        self.eval_step.extend(columns.eval_step)
        self.eval_loss.extend(columns.eval_loss)
        self.accuracy_step.extend(columns.accuracy_step)
        self.accuracy.extend(columns.accuracy)
        modes = np.asarray(columns.modes, dtype=object)
        start = 0
        rows = [*columns.mode_change_row.tolist(), len(columns)]
        for stop, change in zip(rows, [*columns.mode_changes, None]):
            stop = min(int(stop), len(columns))
            if stop > start:
                self.append_batches(BatchColumns(
                    step=columns.step[start:stop], wall_time_s=columns.wall_time_s[start:stop],
                    tokens_seen=columns.tokens_seen[start:stop], batch_time_s=columns.batch_time_s[start:stop],
                    loss=columns.loss[start:stop], lr_model=columns.lr_model[start:stop],
                    lr_rotation=columns.lr_rotation[start:stop], tokens_per_s=columns.tokens_per_s[start:stop],
                    memory_bytes=columns.memory_bytes[start:stop],
                    rotation_angles=columns.rotation_angles[start:stop],
                    expert_load=columns.expert_load[start:stop],
                    ghost_activation=columns.ghost_activation[start:stop],
                    loss_terms=terms_of_columns(columns, start, stop),
                    penalty_weight=columns.penalty_weight[start:stop],
                    mode=modes[columns.mode[start:stop]].tolist(), **routing_of_columns(columns, start, stop),
                ))
                start = stop
            if change is not None:
                add_mode_change(change)
        self.rotation.extend_columns(columns)
        self.add_events(columns.events)

    def extend_records(self, records: list[LoggedRecord]) -> None:
        """Records as read from a run's metrics.jsonl, in order: batches and evaluations in runs of
        consecutive records, mode changes as they come, pauses marked; other events are not plotted."""
        for part in split_at_mode_changes(records):
            if isinstance(part, ModeChange):
                self.add_mode_change(part)
            else:
                self.append(part)
        self.add_events([record for record in records if isinstance(record, RunEvent)])

    def add_mode_change(self, change: ModeChange) -> None:
        self.mode_changes.append(change)
        if not self.segments or self.segments[-1].mode != change.mode:
            self.segments.append(ModeSegment(change.step, change.mode))

    def add_events(self, events) -> None:
        """Events as logged; the plots mark pauses, and the Routing tab lists dead experts."""
        for event in events:
            self.add_event(event)

    def add_event(self, event: RunEvent) -> None:
        self.routing.add_event(event)  # a dead expert's notice
        # A pause logged twice at one step (a second pause with no batch between) is one mark.
        if event.event == EventKind.PAUSED and (not self.pauses or self.pauses[-1] != event.step):
            self.pauses.append(int(event.step))

    def angle_norms(self) -> np.ndarray:
        """(steps, P): the Euclidean norm of each presentation's angle vector."""
        angles = self.angles.view().reshape(len(self.angles), self.presentations, self.rotation_dimensions)
        return np.sqrt(np.sum(angles * angles, axis=2))

    def _continuous_wall_time(self, walls: np.ndarray) -> np.ndarray:
        """A resumed run's clock starts again at 0: carry on from where the previous process stopped."""
        walls = np.asarray(walls, dtype=np.float64)
        if not len(walls):
            return walls
        # A restart is a value below the one before it (the first compared with the last seen).
        previous = np.concatenate([[self._last_wall - self._wall_offset], walls[:-1]])
        restarts = np.flatnonzero(walls < previous)
        out = walls.copy()
        offset = self._wall_offset
        bounds = [*restarts.tolist(), len(walls)]
        start = 0
        for restart in bounds:
            out[start:restart] += offset
            if restart < len(walls):
                offset = out[restart - 1] if restart > 0 else self._last_wall
            start = restart
        self._wall_offset = offset
        self._last_wall = float(out[-1])
        return out
