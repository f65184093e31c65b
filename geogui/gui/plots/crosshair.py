"""The crosshair: a vertical line at the cursor's x on every plot of a tab (they share x), and the
readout below the plots of the curve nearest to the cursor: run, step, value (raw and smoothed), mode."""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Sequence

import pyqtgraph as pg
from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtWidgets import QLabel

from geogui.gui.plotdata.shown_series import readout
from geogui.gui.plots.style import CROSSHAIR_COLOR

if TYPE_CHECKING:
    from geogui.gui.plots.plot import Plot

MOUSE_RATE_HZ = 30  # the crosshair follows the mouse at most this often


def crosshair_line() -> pg.InfiniteLine:
    line = pg.InfiniteLine(angle=90, movable=False, pen=pg.mkPen(CROSSHAIR_COLOR, style=Qt.PenStyle.DotLine))
    line.setVisible(False)
    return line


class MouseFollower(QObject):
    """Calls `on_point(plot, x, y)` (view coordinates) for the plot under the mouse in one scene,
    and `on_leave()` when the mouse leaves the plots (onto an axis, a title, or off the widget):
    a crosshair must not stay where the mouse no longer is."""

    def __init__(self, widget: pg.GraphicsView, plots: Sequence[Plot], on_point: Callable[[Plot, float, float], None],
                 on_leave: Callable[[], None]) -> None:
        super().__init__(widget)
        self._plots = plots
        self._on_point = on_point
        self._on_leave = on_leave
        self._proxy = pg.SignalProxy(widget.scene().sigMouseMoved, rateLimit=MOUSE_RATE_HZ, slot=self._moved)
        widget.viewport().installEventFilter(self)

    def _moved(self, event) -> None:
        scene_pos = event[0]
        for plot in self._plots:
            view = plot.getViewBox()
            if view.sceneBoundingRect().contains(scene_pos):
                point = view.mapSceneToView(scene_pos)
                self._on_point(plot, point.x(), point.y())
                return
        self._on_leave()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt's name
        if event.type() == QEvent.Type.Leave:
            self._on_leave()
        return False


class Readout(QLabel):
    """The line under the plots that says what is under the cursor."""

    def __init__(self) -> None:
        super().__init__(" ")
        self.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.setToolTip("Under the cursor: run, step, value (raw and smoothed) and mode")

    def show_at(self, plots: Sequence[Plot], plot: Plot, x: float, y: float, x_name: str) -> str:
        """The line at x on every one of `plots`, and the readout of the curve of `plot` nearest to
        (x, y). Returns the readout."""
        return self.show_text_at(plots, x, readout(plot.visible_shown(), x, y, x_name, plot.log_y))

    def show_text_at(self, plots: Sequence[Plot], x: float, text: str) -> str:
        """The line at x on every one of `plots`, and `text` as the readout (a heatmap names its cell)."""
        for other in plots:
            other.show_crosshair_at(x)
        self.setText(text or " ")
        return text

    def show_text(self, text: str) -> None:
        """`text` as the readout, with no line (a cell of a heatmap that has no x in common with the plots)."""
        self.setText(text or " ")

    def clear(self, plots: Sequence[Plot]) -> None:
        for plot in plots:
            plot.crosshair.setVisible(False)
        self.setText(" ")
