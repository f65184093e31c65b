"""What the Rotation tab's maps read at any step: every presentation's angles and the hidden-state
similarity of each pair, per step, in bounded memory. Numpy only.

Both live in one `StepMatrix` (angles first, P * r columns presentation-major, then the P * P
similarities row-major, then each step's two means over the pairs p ≠ q: of the rotation similarity
and of the hidden-state similarity), so a step's angles and similarities always come from the same
stored row: one row per step up to `MAP_CAPACITY` steps, then bins of consecutive steps, each the
NaN-ignoring mean of its steps (`RotationAt` says which steps it stands for). Every batch is a row,
those without a value included (standard has no angles, only geometric measures the similarity):
the row of a step without a value is NaN, never the nearest step that had one. The means over pairs
are computed once, as the batches arrive (a bin holds the mean of its steps' means), so the plot
that draws them costs nothing more as the run grows.

The capacity is smaller than the plots' store: a map shows one row at a time, and 8,192 rows are
still several per pixel of the widest plot a step is picked on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

import numpy as np

from geogui.engine.metrics import BatchRecord
from geogui.gui.plotdata.rotation_similarity import mean_off_diagonal, mean_pair_similarity, rotation_similarity
from geogui.gui.plotdata.step_matrix import StepMatrix

if TYPE_CHECKING:
    from geogui.rundir.columns import RunColumns

MAP_CAPACITY = 1 << 13
PAIR_MEANS = 2  # the last columns: the rotation and the hidden-state similarity, each a mean over pairs


@dataclass(frozen=True)
class RotationAt:
    """The stored row for one step: the steps `first`..`last` it stands for (equal until the store
    bins steps) and their values, None where they had none."""

    first: int
    last: int
    angles: np.ndarray | None  # (P, r) radians; None: no rotation at these steps (standard)
    hidden_similarity: np.ndarray | None  # (P, P) mean |cos(h_p, h_q)|; None: not measured (not geometric)

    @property
    def binned(self) -> bool:
        return self.last != self.first

    def rotation_similarity(self) -> np.ndarray | None:
        """(P, P) mean_i cos(θ_p,i − θ_q,i) of the angles shown (None without angles)."""
        return None if self.angles is None else rotation_similarity(self.angles)


class RotationSeries:
    """Per step: the (P, r) angles and the (P, P) hidden-state similarity, for the maps."""

    def __init__(self, presentations: int, rotation_dimensions: int, capacity: int = MAP_CAPACITY) -> None:
        self.presentations = presentations
        self.rotation_dimensions = rotation_dimensions
        self.angle_width = presentations * rotation_dimensions
        self.hidden_width = presentations * presentations
        width = self.angle_width + self.hidden_width
        self.store = StepMatrix(width + PAIR_MEANS, capacity) if width else None
        self.largest_angle = 0.0  # the largest |angle| so far: the angle map's scale when max_rotation is not known

    def __len__(self) -> int:
        return 0 if self.store is None else len(self.store)

    def nbytes(self) -> int:
        return 0 if self.store is None else self.store.nbytes()

    def append_records(self, batches: Sequence[BatchRecord]) -> None:
        if not batches:
            return
        self.append(np.array([r.step for r in batches]),
                    np.stack([_row(r.rotation_angles, self.angle_width) for r in batches]),
                    np.stack([_row(r.hidden_similarity, self.hidden_width) for r in batches]))

    def extend_columns(self, columns: RunColumns) -> None:
        self.append(columns.step, _matrix(columns.rotation_angles, self.angle_width),
                    _matrix(columns.hidden_similarity, self.hidden_width))

    def append(self, steps: np.ndarray, angles: np.ndarray, hidden: np.ndarray) -> None:
        """Steps (n,) with their angles (n, P * r) and similarities (n, P * P), NaN rows where absent.
        A step at or before one already stored (records read again) is left out."""
        if self.store is None or not len(steps):
            return
        steps = np.asarray(steps, dtype=np.int64)
        last = self.store.last_step
        before = np.maximum.accumulate(np.concatenate([[np.iinfo(np.int64).min if last is None else last], steps]))
        keep = steps > before[:-1]  # after every step before it
        if not keep.any():
            return
        angles, hidden = np.asarray(angles, dtype=np.float32)[keep], np.asarray(hidden, dtype=np.float32)[keep]
        if angles.size and np.isfinite(angles).any():
            self.largest_angle = max(self.largest_angle, float(np.nanmax(np.abs(angles))))
        p = self.presentations
        means = np.column_stack([mean_pair_similarity(angles, p), mean_off_diagonal(hidden, p)]).astype(np.float32)
        self.store.append(steps[keep], np.concatenate([angles, hidden, means], axis=1))

    def at(self, step: float | None = None) -> RotationAt | None:
        """The stored row holding `step` (else the nearest), the latest for None; None when empty."""
        if not len(self):
            return None
        row = self.store.value_at(self.store.last_step if step is None else step)
        p, a = self.presentations, self.angle_width
        angles, hidden = row.values[:a], row.values[a:a + self.hidden_width]
        return RotationAt(row.first, row.last,
                          angles.reshape(p, -1) if a and not np.isnan(angles).all() else None,
                          hidden.reshape(p, p) if not np.isnan(hidden).all() else None)

    def pair_means(self) -> tuple[np.ndarray, np.ndarray]:
        """Each stored row's centre step (n,) and its means over the pairs p ≠ q (n, 2): of the rotation
        similarity (NaN without angles) and of the hidden-state similarity (NaN where not measured: the
        orthogonality term over its weight)."""
        if not len(self):
            return np.zeros(0), np.zeros((0, PAIR_MEANS), np.float32)
        return self.store.centres(), self.store.rows()[:, -PAIR_MEANS:]

    def pair_means_at(self, steps: np.ndarray) -> np.ndarray:
        """(n, 2) `pair_means` of the stored row that holds each of `steps` (stored ones: the batches')."""
        steps = np.asarray(steps)
        if not len(self):
            return np.full((len(steps), PAIR_MEANS), np.nan, np.float32)
        first, _ = self.store.steps()
        rows = np.clip(np.searchsorted(first, steps, side="right") - 1, 0, len(first) - 1)
        return self.store.rows()[rows, -PAIR_MEANS:]


def _row(value: np.ndarray | None, width: int) -> np.ndarray:
    """A record's matrix as one row, NaN when it has none (or one of another shape)."""
    if value is None or np.size(value) != width:
        return np.full(width, np.nan, np.float32)
    return np.asarray(value, dtype=np.float32).reshape(width)


def _matrix(values: np.ndarray, width: int) -> np.ndarray:
    """A column matrix of the width wanted; NaN rows where it has another (a run logged without it)."""
    if values.ndim == 2 and values.shape[1] == width:
        return values
    return np.full((len(values), width), np.nan, np.float32)
