"""A cap on the share of wall time the GUI thread spends drawing.

Every millisecond the GUI thread spends handing data to curves and painting them is taken from
training: on a small machine the torch threads and the GUI share the cores, and Python drawing code
holds the GIL the training loop needs between kernels. After a redraw that cost `c` seconds
(setData plus the paint, both measured), the next one waits until `c` is at most `fraction` of the
elapsed time. Cheap redraws (few points, a fast machine) still run at the timer's full rate; costly
ones (a million points, a loaded 2-core laptop) slow down instead of slowing the run.
"""

from __future__ import annotations

import time
from typing import Callable

import pyqtgraph as pg


class RedrawBudget:
    def __init__(self, fraction: float = 0.02, clock: Callable[[], float] = time.perf_counter):
        if not 0 < fraction <= 1:
            raise ValueError("fraction must be in (0, 1]")
        self.fraction = fraction
        self._clock = clock
        self._next_allowed = 0.0

    def ready(self) -> bool:
        """Whether a redraw may run now."""
        return self._clock() >= self._next_allowed

    def spend(self, seconds: float) -> None:
        """Account `seconds` of drawing just done; pushes the next allowed redraw out accordingly."""
        self._next_allowed = self._clock() + seconds * (1.0 / self.fraction - 1.0)

    def add(self, seconds: float) -> None:
        """More cost for the redraw just spent (its paint, which Qt runs after the data hand-over)."""
        self._next_allowed += seconds / self.fraction


class TimedGraphicsLayoutWidget(pg.GraphicsLayoutWidget):
    """A GraphicsLayoutWidget whose paints are charged to a RedrawBudget."""

    def __init__(self, budget: RedrawBudget, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._budget = budget

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt's name
        start = time.perf_counter()
        super().paintEvent(event)
        self._budget.add(time.perf_counter() - start)
