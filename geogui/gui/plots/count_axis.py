"""The x axis of a plot, which may count whole things (steps, tokens).

pyqtgraph places ticks at round fractions when zoomed in (2.5 steps), which no step or token count
can be. While the axis counts, no tick is closer than 1 apart and every tick is a whole number;
wall time keeps pyqtgraph's ticks.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg

COUNTED_X = frozenset({"step", "tokens"})  # the x kinds whose values are whole numbers


class CountAxis(pg.AxisItem):
    def __init__(self, orientation: str = "bottom", counts: bool = True, **kwargs) -> None:
        super().__init__(orientation, **kwargs)
        self.counts = counts

    def set_counts(self, counts: bool) -> None:
        if counts != self.counts:
            self.counts = counts
            self.picture = None  # pyqtgraph's cached drawing of the ticks
            self.update()

    def tickSpacing(self, minVal: float, maxVal: float, size: float):  # noqa: N802, N803 - pyqtgraph's names
        levels = super().tickSpacing(minVal, maxVal, size)
        if not self.counts:
            return levels
        whole: list[tuple[float, float]] = []
        for spacing, offset in levels:
            level = (max(float(spacing), 1.0), float(round(offset)))
            if level not in whole:  # a minor level of 0.5 becomes the major one of 1: once is enough
                whole.append(level)
        return whole

    def tickValues(self, minVal: float, maxVal: float, size: float):  # noqa: N802, N803 - pyqtgraph's names
        levels = super().tickValues(minVal, maxVal, size)
        if not self.counts or self.logMode:
            return levels
        return [(spacing, [float(v) for v in np.round(values) if np.isclose(v, round(v))])
                for spacing, values in levels]
