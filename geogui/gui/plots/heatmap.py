"""Heatmaps of the run's routing and rotation numbers.

`MatrixHeatmap` is a categorical heatmap: a matrix whose rows and columns have names (layers × experts,
presentations × angles, presentations × presentations), one cell each, row 0 at the top as a matrix
is written, a colour bar beside it, and a readout naming the cell under the mouse in words a caller
chooses. `StepHeatmap` (in `step_heatmap`, also importable from here) draws rows over training steps.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Signal

from geogui.gui.plotdata.cell_readout import MatrixCell, matrix_readout
from geogui.gui.plots.heatmap_image import FRACTION, SIGNED, UTILIZATION, ColorScale, HeatmapImage, name_ticks
from geogui.gui.plots.step_heatmap import StepHeatmap
from geogui.gui.plots.style import TEXT_COLOR

__all__ = ["FRACTION", "SIGNED", "UTILIZATION", "ColorScale", "MatrixHeatmap", "StepHeatmap", "name_ticks"]


class MatrixHeatmap(pg.PlotItem):
    """Named rows × named columns, a cell each, with a colour bar and a readout of the cell under the
    mouse (`hovered`, phrased by `formatter`)."""

    hovered = Signal(str)  # the readout of the cell under the mouse; "" when it leaves the cells

    def __init__(self, title: str = "", scale: ColorScale = UTILIZATION,
                 formatter: Callable[[MatrixCell], str] = matrix_readout, row_title: str = "",
                 col_title: str = "") -> None:
        super().__init__(title=title)
        self.formatter = formatter
        self.row_names: tuple[str, ...] = ()
        self.col_names: tuple[str, ...] = ()
        self.readout = ""  # what the readout says now
        self.heat = HeatmapImage(scale, self._on_hover)
        self.heat.add_to(self)
        view = self.getViewBox()
        view.invertY(True)  # row 0 at the top
        view.setMouseEnabled(x=False, y=False)  # a matrix has nothing to zoom into
        view.setMenuEnabled(False)
        self.hideButtons()
        for side, label in (("left", row_title), ("bottom", col_title)):
            axis = self.getAxis(side)
            axis.setTextPen(pg.mkPen(TEXT_COLOR))
            axis.setPen(pg.mkPen(TEXT_COLOR))
            axis.setLabel(label)

    @property
    def values(self) -> np.ndarray:
        return self.heat.values

    def set_matrix(self, values: np.ndarray, row_names: Sequence[str], col_names: Sequence[str]) -> None:
        """Show `values` (rows, cols): cell (i, j) is row i (from the top), column j (from the left)."""
        values = np.asarray(values, dtype=np.float32)
        if values.ndim != 2 or values.shape != (len(row_names), len(col_names)):
            raise ValueError(f"a {values.shape} matrix for {len(row_names)} row and {len(col_names)} column names")
        rows, cols = values.shape
        self.heat.show(values, QRectF(0, 0, cols, rows))
        if (tuple(row_names), tuple(col_names)) != (self.row_names, self.col_names):
            self.row_names, self.col_names = tuple(row_names), tuple(col_names)
            self.getAxis("left").setTicks(name_ticks(self.row_names))
            self.getAxis("bottom").setTicks(name_ticks(self.col_names))
            self.getViewBox().setRange(xRange=(0, cols), yRange=(0, rows), padding=0)

    # -- readout ----------------------------------------------------------------------------------
    def cell_at(self, x: float, y: float) -> MatrixCell | None:
        """The cell at (x, y) in view coordinates; None off the cells."""
        found = self.heat.cell_at(x, y)
        if found is None:
            return None
        row, col = found
        return MatrixCell(row, col, self.row_names[row], self.col_names[col], float(self.values[row, col]))

    def readout_at(self, x: float, y: float) -> str:
        cell = self.cell_at(x, y)
        return "" if cell is None else self.formatter(cell)

    def readout_at_scene(self, scene_pos: QPointF) -> str:
        point = self.getViewBox().mapSceneToView(scene_pos)
        return self.readout_at(point.x(), point.y())

    def _on_hover(self, point: tuple[float, float] | None) -> None:
        text = "" if point is None else self.readout_at(*point)
        if text != self.readout:
            self.readout = text
            self.heat.image.setToolTip(text)
            self.hovered.emit(text)
