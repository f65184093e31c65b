"""Everything plotted for one run, as growable numpy columns. No Qt here: the plots read it.

The worker delivers BatchRecord/EvalRecord lists; `append` turns them into columns in one pass so
the redraw timer only has to hand views to pyqtgraph. The smoothed loss (TensorBoard's debiased EMA,
restarted at every mode segment) is extended as rows arrive and recomputed in full only when the
user changes the smoothing weight.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from geogui.engine.metrics import BatchRecord, EvalRecord, LoggedRecord, ModeChange
from geogui.gui.growable import GrowableArray
from geogui.gui.smoothing import DEFAULT_WEIGHT, SegmentedEma, debiased_ema

MIB = 1024.0 * 1024.0


@dataclass(frozen=True)
class ModeSegment:
    start_step: float  # first step trained in this mode
    mode: str


class RunSeries:
    def __init__(self, presentations: int, rotation_dimensions: int, smoothing: float = DEFAULT_WEIGHT) -> None:
        self.presentations = presentations
        self.rotation_dimensions = rotation_dimensions
        self._ema = SegmentedEma(smoothing)
        self._segments_smoothed = 0  # mode segments whose first batch the smoother has already seen
        self.step = GrowableArray()
        # The other x axes: training seconds (summed over resumes, each of which restarts its clock)
        # and tokens seen.
        self.wall_time_s = GrowableArray()
        self.tokens_seen = GrowableArray()
        self._wall_offset = 0.0
        self._last_wall = 0.0
        self.batch_ms = GrowableArray()
        self.loss = GrowableArray()
        self.loss_ema = GrowableArray()
        self.lr_model = GrowableArray()
        self.lr_rotation = GrowableArray()
        self.tokens_per_s = GrowableArray()
        self.memory_mib = GrowableArray()
        # (P * r) columns, presentation-major: column p * r + i is angle i of presentation p.
        self.angles = GrowableArray(width=presentations * rotation_dimensions)
        # Widths of the expert columns come from the first record: the record is the source of truth.
        self.expert_load: GrowableArray | None = None
        self.ghost_activation: GrowableArray | None = None
        self.eval_step = GrowableArray()
        self.eval_loss = GrowableArray()
        # Batches whose loss was not finite: drawn as markers, never folded into the smoothed loss.
        self.nonfinite_step = GrowableArray()
        self.segments: list[ModeSegment] = []
        self.mode_changes: list[ModeChange] = []
        self.last_batch: BatchRecord | None = None

    def __len__(self) -> int:
        return len(self.step)

    @property
    def smoothing(self) -> float:
        return self._ema.weight

    def set_smoothing(self, smoothing: float) -> None:
        """Change the EMA weight (0 = off, towards 1 = smoother) and recompute the whole smoothed column."""
        self._ema = SegmentedEma(smoothing)
        self.loss_ema.clear()
        self._segments_smoothed = len(self.segments)
        self.loss_ema.extend(debiased_ema(self.loss.view(), smoothing, self.segment_starts()))

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

    def append(self, records: list[BatchRecord | EvalRecord]) -> None:
        batches = [r for r in records if isinstance(r, BatchRecord)]
        for record in records:
            if isinstance(record, EvalRecord):
                self.eval_step.append(record.step)
                self.eval_loss.append(record.loss)
        if not batches:
            return
        if not self.segments:
            self.segments.append(ModeSegment(batches[0].step, batches[0].mode))
        if self.expert_load is None:
            self.expert_load = GrowableArray(width=len(batches[0].expert_load))
            self.ghost_activation = GrowableArray(width=len(batches[0].ghost_activation))
        losses = np.array([r.loss for r in batches], dtype=np.float64)
        steps = np.array([r.step for r in batches], dtype=np.float64)
        restarts = []
        while self._segments_smoothed < len(self.segments) and (
                self.segments[self._segments_smoothed].start_step <= steps[-1]):
            restarts.append(int(np.searchsorted(steps, self.segments[self._segments_smoothed].start_step)))
            self._segments_smoothed += 1
        self.step.extend(steps)
        self.wall_time_s.extend(self._continuous_wall_time([r.wall_time_s for r in batches]))
        self.tokens_seen.extend([r.tokens_seen for r in batches])
        self.batch_ms.extend([r.batch_time_s * 1000.0 for r in batches])
        self.loss.extend(losses)
        self.loss_ema.extend(self._ema.extend(losses, restarts))
        self.nonfinite_step.extend(steps[~np.isfinite(losses)])
        self.lr_model.extend([r.lr_model for r in batches])
        self.lr_rotation.extend([r.lr_rotation for r in batches])
        self.tokens_per_s.extend([r.tokens_per_s for r in batches])
        self.memory_mib.extend([r.memory_bytes / MIB for r in batches])
        # Standard mode has no angles: a NaN row leaves a gap in the curves instead of a fake zero.
        no_angles = np.full(self.angles.view().shape[1:], np.nan)
        self.angles.extend([no_angles if r.rotation_angles is None else r.rotation_angles.ravel() for r in batches])
        self.expert_load.extend([r.expert_load for r in batches])
        self.ghost_activation.extend([r.ghost_activation for r in batches])
        self.last_batch = batches[-1]

    def extend_records(self, records: list[LoggedRecord]) -> None:
        """Records as read from a run's metrics.jsonl, in order: batches and evaluations in runs of
        consecutive records, mode changes as they come; other events are not plotted."""
        chunk: list[BatchRecord | EvalRecord] = []
        for record in records:
            if isinstance(record, (BatchRecord, EvalRecord)):
                chunk.append(record)
            elif isinstance(record, ModeChange):
                self.append(chunk)
                chunk = []
                self.add_mode_change(record)
        self.append(chunk)

    def add_mode_change(self, change: ModeChange) -> None:
        self.mode_changes.append(change)
        if not self.segments or self.segments[-1].mode != change.mode:
            self.segments.append(ModeSegment(change.step, change.mode))

    def angle_norms(self) -> np.ndarray:
        """(steps, P): the Euclidean norm of each presentation's angle vector."""
        angles = self.angles.view().reshape(len(self.angles), self.presentations, self.rotation_dimensions)
        return np.sqrt(np.sum(angles * angles, axis=2))

    def _continuous_wall_time(self, walls: list[float]) -> list[float]:
        # A resumed run's clock starts again at 0: carry on from where the previous process stopped.
        out = []
        for wall in walls:
            if wall < self._last_wall - self._wall_offset:
                self._wall_offset = self._last_wall
            self._last_wall = self._wall_offset + wall
            out.append(self._last_wall)
        return out
