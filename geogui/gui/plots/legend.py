"""A plot's legend in a row of its own between the title and the view: it never covers the data, and
a plot without legend entries gives the row back. Stacked plots keep views of the same width (a legend
beside one plot would shift its x axis against the others').

Key entries (`key_sample`) explain a line style rather than name a curve: a longer sample, so that
dashes and dots can be told apart, and a click does nothing (there is no curve to hide)."""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import QRectF, QSizeF, Qt

SAMPLE_PX = 20
KEY_SAMPLE_PX = 34
LEGEND_ROW_PX = 22  # the row above a plot's view that holds its legend
ONE_ROW = 99  # entries per row: every legend is one row; its plot is wide enough for what it lists


class LegendRow(pg.LegendItem):
    """A legend that keeps the size of its entries inside the plot's layout (a LegendItem in a layout
    would otherwise stretch across the whole width)."""

    def __init__(self, columns: int = ONE_ROW) -> None:
        super().__init__(labelTextSize="8pt", colCount=columns, horSpacing=4)
        self.layout.setContentsMargins(2, 0, 2, 0)  # one line high: the row above the view it hangs in
        self.layout.setVerticalSpacing(0)

    def updateSize(self) -> None:  # noqa: N802 - pyqtgraph's name
        self.layout.invalidate()
        size = self.layout.effectiveSizeHint(Qt.SizeHint.PreferredSize) if self.items else QSizeF(0, 0)
        self.setMinimumSize(size)
        self.setMaximumSize(size)
        self.resize(size)

    def labels(self) -> list[str]:
        """The entries' texts, in order: what the legend says."""
        return [label.text for _, label in self.items]


def place_above_view(plot: pg.PlotItem, legend: LegendRow) -> None:
    """Put `legend` in the row between `plot`'s title and its view, right-aligned, as `plot.legend`
    (so curves added with a name are listed)."""
    add_above_view(plot, legend)
    plot.legend = legend


def add_above_view(plot: pg.PlotItem, legend: LegendRow) -> None:
    """Put `legend` in a row between `plot`'s title and its view, right-aligned. The row is the top
    axis's, which these plots never use for values: shown without line, ticks or labels, it keeps
    the row's height in the layout, and the legends (the plot's own, and the compared runs' one,
    shown in turn) hang from its right end. (Putting a legend into the layout's cell instead means
    taking the axis out of the layout, which made the process crash at exit, in Qt's teardown.)"""
    axis = plot.getAxis("top")
    if not axis.property("legend-row"):
        axis.setProperty("legend-row", True)
        plot.showAxis("top")
        axis.setGrid(False)  # the bottom axis draws the grid
        axis.setStyle(showValues=False, tickLength=0)
        axis.setPen(pg.mkPen(0, 0, 0, 0))
        axis.setTickPen(pg.mkPen(0, 0, 0, 0))
        axis.setHeight(LEGEND_ROW_PX)
    legend.setParentItem(axis)
    legend.anchor(itemPos=(1, 0.5), parentPos=(1, 0.5))


class _KeySample(pg.ItemSample):
    def __init__(self, item: pg.PlotDataItem, width: int) -> None:
        super().__init__(item)
        self.width_px = width
        self.setFixedWidth(width)

    def boundingRect(self) -> QRectF:  # noqa: N802 - Qt's name
        return QRectF(0, 0, self.width_px, SAMPLE_PX)

    def paint(self, painter, *_args) -> None:
        painter.setPen(pg.mkPen(self.item.opts["pen"]))
        painter.drawLine(0, 11, self.width_px - 2, 11)

    def mouseClickEvent(self, event) -> None:  # noqa: N802 - pyqtgraph's name
        event.accept()


def key_sample(pen, width: int = KEY_SAMPLE_PX) -> pg.ItemSample:
    """A legend sample of a colour or line style that belongs to no one curve."""
    return _KeySample(pg.PlotDataItem(pen=pen), width)
