"""A heatmap over training steps: a row per expert (or presentation), x the training step, each cell the
mean of what a `StepMatrix` holds for its steps.

It is a `Plot`, so it stacks and shares x with the curve plots of a tab, and shows mode changes and
pauses through the plot's one `ModeMarksItem`: the dashed change lines and pause lines over the cells,
the labels over everything, and the mode tints in a thin lane above the cells (`LANE_PX`, kept that
high in pixels whatever the plot's height), never over a cell, whose colour must read true against
the colour bar. Like the curves, the image holds only what the view's pixels can show: on every zoom,
pan or resize it is binned afresh from the store for the visible steps and the view's width.

Its colour bar lies under the plot by default, so the view stays as wide as the curve plots' above
it and a step is at the same place on all of them.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
from PySide6.QtCore import QRectF, QTimer, Signal

from geogui.gui.plotdata.cell_readout import StepCell, step_readout
from geogui.gui.plotdata.step_matrix import Columns, StepImage, StepMatrix
from geogui.gui.plots.heatmap_image import UTILIZATION, ColorScale, HeatmapImage, name_ticks
from geogui.gui.plots.overlays import CompareSpec
from geogui.gui.plots.plot import Plot

LANE_PX = 22  # above the cells: the mode tints, and the first row of mode labels
IMAGE_Z = -150  # under the mode marks' lines (-100) and labels (50)


def not_compared(title: str) -> CompareSpec:
    """What a heatmap draws of each run while runs are compared: no curve (its image stays its own run's)."""
    return CompareSpec(title, lambda series: np.full(len(series), np.nan))


class StepHeatmap(Plot):
    """Rows named `row_names` over training steps, from a `StepMatrix`'s `columns` (`set_source`), with
    a colour bar, the run's mode marks, and a readout of the cell under the mouse (`hovered`, phrased
    by `formatter`). `follow_view`: redraw itself after a zoom, pan or resize (a board that redraws on
    `needs_redraw` itself may turn it off)."""

    hovered = Signal(str)  # the readout of the cell under the mouse; "" when it leaves the cells

    def __init__(self, title: str, scale: ColorScale = UTILIZATION, compare: CompareSpec | None = None,
                 formatter: Callable[[StepCell], str] = step_readout, y_label: str = "",
                 follow_view: bool = True, bar_orientation: str = "horizontal") -> None:
        super().__init__(title, y_label, compare or not_compared(title))
        self.formatter = formatter
        self.store: StepMatrix | None = None
        self.columns: Columns = slice(0, 0)
        self.row_names: tuple[str, ...] = ()
        self.drawn = StepImage(np.empty((0, 0), np.float32), 0.0, 0.0)  # the image as last drawn
        self.readout = ""
        self.heat = HeatmapImage(scale, self._on_hover, bar_orientation)
        self.heat.add_to(self, z=IMAGE_Z)
        self._restyle()
        self._redraw_pending = False
        if follow_view:
            self.needs_redraw.connect(self._schedule_redraw)
        self.getViewBox().sigResized.connect(self._fit_rows)

    def _restyle(self) -> None:
        """A curve plot's y is a value; here it is the rows, fixed, row 0 at the top."""
        view = self.getViewBox()
        view.invertY(True)
        view.setAutoVisible(y=False)
        view.enableAutoRange(y=False)
        view.setMouseEnabled(y=False)
        self.showGrid(x=False, y=False)  # grid lines would show only in the lane, as clutter
        self.log_y_action.setVisible(False)
        self.fit_action.setVisible(False)

    def set_source(self, store: StepMatrix, columns: Columns, row_names: Sequence[str]) -> None:
        """Draw `store`'s `columns` (one per row name, from the top) at the next `redraw`."""
        count = len(range(store.width)[columns]) if isinstance(columns, slice) else len(columns)
        if count != len(row_names):
            raise ValueError(f"{count} columns for {len(row_names)} row names")
        self.store, self.columns = store, columns
        if tuple(row_names) != self.row_names:
            self.row_names = tuple(row_names)
            self.getAxis("left").setTicks(name_ticks(self.row_names))
            self._fit_rows()

    # -- drawing ----------------------------------------------------------------------------------
    def redraw(self) -> None:
        """Bin the store's rows for the visible steps and the view's width, and draw them."""
        key = self.view_key()
        self.drawn_key = key
        if self.store is None:
            self.drawn = StepImage(np.empty((len(self.row_names), 0), np.float32), 0.0, 0.0)
        else:
            self.drawn = self.store.image(self.columns, None if key[0] == "auto" else key[1], key[-1])
        image = self.drawn.image
        self.heat.show(image, QRectF(self.drawn.x0, 0, self.drawn.x1 - self.drawn.x0, image.shape[0]))

    def refit(self) -> None:
        """Fit x to the data again; y always shows every row."""
        self.getViewBox().enableAutoRange(x=True)

    def _schedule_redraw(self) -> None:
        if not self._redraw_pending:  # once per burst of view changes, as the board does
            self._redraw_pending = True
            QTimer.singleShot(0, self._redraw_if_stale)

    def _redraw_if_stale(self) -> None:
        self._redraw_pending = False
        if self.drawn_key != self.view_key():
            self.redraw()

    def _fit_rows(self, *_args) -> None:
        """Every row in view, with the lane above them LANE_PX high whatever the view's height."""
        rows = max(len(self.row_names), 1)
        height = self.getViewBox().height()
        lane = LANE_PX * rows / (height - LANE_PX) if height > 2 * LANE_PX else 0.0
        self.getViewBox().setYRange(-lane, rows, padding=0)
        self.mode_marks.tint_rows = (-lane, 0.0)

    # -- readout ----------------------------------------------------------------------------------
    def cell_at(self, x: float, y: float) -> StepCell | None:
        """The drawn cell at (x, y) in view coordinates: its row, steps and value; None off the cells."""
        found = self.heat.cell_at(x, y)
        if found is None or self.store is None or not len(self.store):
            return None
        row, col = found
        width = self.drawn.cell_steps
        first = round(self.drawn.x0 + col * width + 0.5)
        last = first + round(width) - 1
        first, last = max(first, self.store.first_step), min(last, self.store.last_step)
        return StepCell(row, self.row_names[row], first, last, float(self.drawn.image[row, col]))

    def readout_at(self, x: float, y: float) -> str:
        cell = self.cell_at(x, y)
        return "" if cell is None else self.formatter(cell)

    def _on_hover(self, point: tuple[float, float] | None) -> None:
        text = "" if point is None else self.readout_at(*point)
        if text != self.readout:
            self.readout = text
            self.heat.image.setToolTip(text)
            self.hovered.emit(text)
