"""Everything plotted for one run, as growable numpy columns. No Qt here: the plots read it.

The worker delivers BatchRecord/EvalRecord lists; `append` turns them into columns in one pass so
the redraw timer only has to hand views to pyqtgraph. The EMA of the loss is kept up to date as rows
arrive and recomputed in full only when the user changes the smoothing factor.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
import numpy as np

from geogui.engine.metrics import BatchRecord, EvalRecord, LoggedRecord, ModeChange
from geogui.gui.growable import GrowableArray

MIB = 1024.0 * 1024.0


@dataclass(frozen=True)
class ModeSegment:
    start_step: float  # first step trained in this mode
    mode: str


class RunSeries:
    def __init__(self, presentations: int, rotation_dimensions: int, smoothing: float = 0.9) -> None:
        self.presentations = presentations
        self.rotation_dimensions = rotation_dimensions
        self._smoothing = smoothing
        self.step = GrowableArray()
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
        self.segments: list[ModeSegment] = []
        self.mode_changes: list[ModeChange] = []
        self.last_batch: BatchRecord | None = None
        self._ema: float | None = None

    def __len__(self) -> int:
        return len(self.step)

    @property
    def smoothing(self) -> float:
        return self._smoothing

    def set_smoothing(self, smoothing: float) -> None:
        """Change the EMA factor (0 = raw, towards 1 = smoother) and recompute the whole EMA column."""
        self._smoothing = smoothing
        self.loss_ema.clear()
        self._ema = None
        self.loss_ema.extend(self._ema_of(self.loss.view().tolist()))

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
        losses = [r.loss for r in batches]
        self.step.extend([r.step for r in batches])
        self.batch_ms.extend([r.batch_time_s * 1000.0 for r in batches])
        self.loss.extend(losses)
        self.loss_ema.extend(self._ema_of(losses))
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

    def _ema_of(self, values: list[float]) -> list[float]:
        # Sequential by nature; plain floats keep this at ~0.1 us a point. A non-finite loss is skipped
        # rather than poisoning every later point.
        s, ema, out = self._smoothing, self._ema, []
        for value in values:
            if math.isfinite(value):
                ema = value if ema is None else s * ema + (1.0 - s) * value
            out.append(math.nan if ema is None else ema)
        self._ema = ema
        return out
