"""What both heatmaps draw their cells with: an image placed exactly on its cells, its colour bar, and a
neutral grey for cells without a value.

The cells are coloured here, through the colour bar's own 256-entry table at fixed levels, and handed
to the `ImageItem` as opaque RGBA. Left to pyqtgraph (levels and a lookup table on the item), a float
image becomes an 8-bit indexed QImage, which Qt converts at every paint: 4.5 ms to stretch a 1,137 × 8
image over a 1,158 × 650 px view in software rendering, against 0.8 ms for 32-bit RGBA. Colouring
here also gives a cell without a value (NaN, which pyqtgraph would draw transparent) a grey of its
own, `NAN_COLOR`, a colour no scale here uses, and never runs `autoLevels`.

`ColorScale` says how values map to colours. The presets:
- `UTILIZATION`: an expert's share of its layer's load, 0..2, on a diverging map whose pale middle is
  the fair share (1): a dead expert (0) is deep blue, an overloaded one red, and fair reads at a glance.
- `FRACTION`: values in 0..1 (routing entropy, overflow, |cos| similarity) on viridis, dark to bright.
- `SIGNED`: signed data (rotation angles) on the diverging map, centred on 0 (+- the largest |value|).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF
from PySide6.QtGui import QColor

from geogui.gui.plots.style import TEXT_COLOR

NAN_COLOR = "#8c8c8c"  # mid grey: neither a viridis colour nor the pale middle of the diverging map
BAR_WIDTH = 14  # px across the colour bar
TABLE_SIZE = 256  # colours in the table: the colour bar draws the same


@dataclass(frozen=True)
class ColorScale:
    """A colour map (a pyqtgraph name) and its levels: fixed, or from the data (`levels` None), then
    centred on 0 when `symmetric`."""

    colormap: str
    levels: tuple[float, float] | None = None
    symmetric: bool = False
    label: str = ""

    def levels_for(self, values: np.ndarray) -> tuple[float, float]:
        if self.levels is not None:
            return self.levels
        finite = values[np.isfinite(values)]
        if not finite.size:
            return (-1.0, 1.0) if self.symmetric else (0.0, 1.0)
        if self.symmetric:
            reach = float(np.abs(finite).max()) or 1.0
            return -reach, reach
        low, high = float(finite.min()), float(finite.max())
        return (low, high) if high > low else (low - 0.5, high + 0.5)

    def color_map(self) -> pg.ColorMap:
        return pg.colormap.get(self.colormap)


UTILIZATION = ColorScale("CET-D1", (0.0, 2.0), label="share of fair load")
FRACTION = ColorScale("viridis", (0.0, 1.0))
SIGNED = ColorScale("CET-D1", symmetric=True)


def name_ticks(names: Sequence[str]) -> list[list[tuple[float, str]]]:
    """Axis ticks naming cells 0..n-1, each at its cell's centre."""
    return [[(index + 0.5, name) for index, name in enumerate(names)], []]


def colored(values: np.ndarray, levels: tuple[float, float], table: np.ndarray) -> np.ndarray:
    """(rows, cols) values as (rows, cols, 4) RGBA from `table` (n, 4) uint8: `levels[0]` and below
    the first colour, `levels[1]` and above the last, NaN grey."""
    low, high = levels
    scaled = (values - np.float32(low)) * np.float32(len(table) / (high - low)) if high > low \
        else np.zeros_like(values)
    missing = np.isnan(scaled)
    index = np.clip(np.where(missing, 0, scaled), 0, len(table) - 1).astype(np.intp)
    rgba = table[index]
    rgba[missing] = pg.mkColor(NAN_COLOR).getRgb()
    return rgba


class _HoverImage(pg.ImageItem):
    """An ImageItem that tells its owner where the mouse is over it (view coordinates; None: it left)."""

    def __init__(self, on_hover: Callable[[tuple[float, float] | None], None]) -> None:
        super().__init__(axisOrder="row-major")  # image[row, col]: row i is y in [i, i + 1]
        self._on_hover = on_hover

    def hoverEvent(self, ev) -> None:  # noqa: N802 - pyqtgraph's name
        super().hoverEvent(ev)
        point = None if ev.isExit() else self.mapToView(ev.pos())
        self._on_hover(None if point is None else (point.x(), point.y()))


class HeatmapImage:
    """One heatmap's image and its colour bar."""

    def __init__(self, scale: ColorScale, on_hover: Callable[[tuple[float, float] | None], None],
                 orientation: str = "vertical") -> None:
        self.scale = scale
        self.table = scale.color_map().getLookupTable(nPts=TABLE_SIZE, alpha=True)  # what the bar draws
        self.image = _HoverImage(on_hover)
        self.bar = pg.ColorBarItem(values=scale.levels or (0.0, 1.0), colorMap=scale.color_map(), interactive=False,
                                   width=BAR_WIDTH, label=scale.label or None, orientation=orientation,
                                   colorMapMenu=False)
        self.bar.axis.setTextPen(pg.mkPen(TEXT_COLOR))
        self.bar.axis.setStyle(maxTickLevel=1)  # sub-minor ticks on a bar this short are a comb
        self.values = np.empty((0, 0), np.float32)  # as last shown
        self.rect = QRectF()

    def add_to(self, plot: pg.PlotItem, z: float = 0.0) -> None:
        """Into `plot`'s view, the colour bar beside (vertical) or under (horizontal) the view."""
        plot.addItem(self.image)
        self.image.setZValue(z)
        self.bar.setImageItem([], insert_in=plot)  # the bar only shows the scale: the cells are coloured here

    @property
    def levels(self) -> tuple[float, float]:
        return tuple(self.bar.levels())

    def show(self, values: np.ndarray, rect: QRectF) -> None:
        """Draw `values` (rows, cols) over `rect` in view coordinates: cell (i, j) covers x from
        rect.left() + j * width / cols and y from rect.top() + i * height / rows, exactly."""
        values = np.asarray(values, dtype=np.float32)
        self.values, self.rect = values, QRectF(rect)
        if not values.size:
            self.image.setVisible(False)
            return
        levels = self.scale.levels_for(values)
        if levels != self.levels:
            self.bar.setLevels(levels)
        self.image.setImage(colored(values, levels, self.table), autoLevels=False, levels=None, rect=rect)
        self.image.setVisible(True)

    def cell_at(self, x: float, y: float) -> tuple[int, int] | None:
        """The (row, col) of the cell at view point (x, y); None off the image."""
        rows, cols = self.values.shape
        rect = self.rect
        if not self.values.size or not rect.contains(QPointF(x, y)):
            return None
        col = int((x - rect.left()) / rect.width() * cols)
        row = int((y - rect.top()) / rect.height() * rows)
        return (row, col) if 0 <= row < rows and 0 <= col < cols else None

    def color_of(self, value: float) -> QColor:
        """The colour a cell of `value` is drawn in at the current levels (grey for NaN)."""
        rgba = colored(np.array([[value]], np.float32), self.levels, self.table)[0, 0]
        return QColor(*(int(c) for c in rgba))
