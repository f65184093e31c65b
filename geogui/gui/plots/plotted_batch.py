"""The newest batch given to the plots, held until a redraw has drawn it.

The plots redraw on a timer and under a budget (see `redraw_budget`), so records wait for a while
before they are drawn. Whatever reports the step beside the plots (the status bar) takes the batch
from here once it is drawn, so that it never names a step the plots do not show yet.
"""

from __future__ import annotations

from typing import Callable, Sequence

from geogui.engine.metrics import BatchRecord, EvalRecord
from geogui.rundir.columns import RunColumns


class PlottedBatch:
    def __init__(self) -> None:
        self._waiting: BatchRecord | None = None

    def clear(self) -> None:
        self._waiting = None

    def arrived(self, records: Sequence[BatchRecord | EvalRecord]) -> None:
        batches = [record for record in records if isinstance(record, BatchRecord)]
        if batches:
            self._waiting = batches[-1]

    def arrived_columns(self, columns: RunColumns, presentations: int) -> None:
        if len(columns):
            self._waiting = columns.batch(len(columns) - 1, presentations or None)

    def drawn(self, report: Callable[[BatchRecord], object]) -> None:
        """A redraw has just drawn everything that arrived: report the newest batch (once)."""
        batch, self._waiting = self._waiting, None
        if batch is not None:
            report(batch)
