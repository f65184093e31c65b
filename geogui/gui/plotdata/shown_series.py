"""What one curve of a plot shows, in full, and the crosshair readout read off it. Numpy only.

The plots hand their curves reduced data (`peak_reduce`); the numbers a user reads or exports come
from here instead: the whole series, raw and smoothed, with its run, steps and modes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from geogui.gui.plotdata.run_series import RunSeries

X_AXES = {"step": "step", "wall_time": "wall time (s)", "tokens": "tokens seen"}  # what every x axis can count


@dataclass(frozen=True)
class ShownSeries:
    run: str  # the run's name (or the overlay's label)
    name: str  # the curve's name: "loss", "E3", "p2 d1", ...
    series: RunSeries  # where the steps' modes are looked up
    step: np.ndarray
    x: np.ndarray  # on the chosen x axis (equal to `step` on the step axis)
    y: np.ndarray  # raw values
    smoothed: np.ndarray | None = None  # drawn over the raw values, when the plot smooths them
    # batches per stored bin: past the store's capacity each bin is two rows, its maximum then its
    # minimum, at its first and last step (see geogui.gui.plotdata.level_of_detail)
    bin_size: int = 1

    def nearest_row(self, x: float) -> int | None:
        """The row whose x is nearest to `x` (None for an empty series)."""
        if not len(self.x):
            return None
        right = int(np.searchsorted(self.x, x))
        if right == 0:
            return 0
        if right == len(self.x):
            return len(self.x) - 1
        return right if self.x[right] - x < x - self.x[right - 1] else right - 1

    def mode_at_row(self, row: int) -> str | None:
        batch_row = int(np.searchsorted(self.series.step.view(), self.step[row]))
        return self.series.mode_at(min(batch_row, len(self.series) - 1))


@dataclass(frozen=True)
class RunView:
    """One run as the plots draw it: its series, the name its curves carry and the x axis they share."""

    series: RunSeries
    label: str
    x_kind: str = "step"

    def x_at_steps(self, steps) -> np.ndarray:
        return self.series.x_at_steps(self.x_kind, steps)

    def shown(self, name: str, y: np.ndarray, smoothed: np.ndarray | None = None) -> ShownSeries:
        """A curve of one value per batch (and its smoothed values, when the plot smooths it)."""
        series = self.series
        return ShownSeries(self.label, name, series, series.step.view(), series.x_column(self.x_kind).view(), y,
                           smoothed, series.bin_size)

    def shown_at_steps(self, name: str, steps: np.ndarray, y: np.ndarray) -> ShownSeries:
        """A curve of values at given steps (evaluations), not one per batch."""
        return ShownSeries(self.label, name, self.series, steps, self.x_at_steps(steps), y)


def _number(value: float) -> str:
    return f"{value:.6g}" if math.isfinite(value) else str(value)


def readout(candidates: list[ShownSeries], x: float, y: float, x_name: str = "step", log_y: bool = False
            ) -> str:
    """The line under the cursor at (x, y) in view coordinates: of the curves in `candidates`, the
    one whose value at the nearest row is closest to y. Empty when there is nothing there."""
    best: tuple[float, ShownSeries, int] | None = None
    for shown in candidates:
        row = shown.nearest_row(x)
        if row is None:
            continue
        value = float(shown.y[row])
        if shown.smoothed is not None and not math.isfinite(value):
            value = float(shown.smoothed[row])
        if log_y:
            value = math.log10(value) if value > 0 else math.nan
        distance = abs(value - y) if math.isfinite(value) else math.inf
        if best is None or distance < best[0]:
            best = (distance, shown, row)
    if best is None:
        return ""
    _, shown, row = best
    parts = [shown.run] if shown.run else []
    extreme = ""
    if shown.bin_size > 1:  # a bin of batches: say which, and that the value is its max or min
        first = row - row % 2
        last = min(first + 1, len(shown.step) - 1)
        parts.append(f"steps {int(shown.step[first])}–{int(shown.step[last])}")
        extreme = " max" if row % 2 == 0 else " min"
    else:
        parts.append(f"step {int(shown.step[row])}")
    if x_name != "step":
        parts.append(f"{x_name} {_number(float(shown.x[row]))}")
    parts.append(f"{shown.name}{extreme} {_number(float(shown.y[row]))}")
    if shown.smoothed is not None:
        parts.append(f"smoothed{extreme} {_number(float(shown.smoothed[row]))}")
    mode = shown.mode_at_row(row)
    if mode:
        parts.append(f"mode {mode}")
    return " · ".join(parts)
