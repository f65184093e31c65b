"""One plot and everything about it.

A plot gets only what its pixels can show: the visible stretch of each curve reduced to each pixel
column's minimum and maximum (`peak_reduce`), so a run of a million steps redraws as fast as a short
one and a single spike keeps its full height at any zoom. What a user reads or exports never comes
from the reduced data: every curve keeps a `ShownSeries` (the full series, raw and smoothed, with run,
steps and modes). The right-click menu switches the y axis to log and fits y without outliers, which
only changes the view and says on the plot how many points it leaves out.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Signal
from PySide6.QtGui import QAction

from geogui.gui.plotdata.outlier_fit import fit_without_outliers, visible_values
from geogui.gui.plotdata.peak_reduce import peak_reduce
from geogui.gui.plotdata.shown_series import ShownSeries
from geogui.gui.plots.count_axis import CountAxis
from geogui.gui.plots.crosshair import crosshair_line
from geogui.gui.plots.legend import ONE_ROW, LegendRow, place_above_view
from geogui.gui.plots.mode_marks import ModeMarksItem
from geogui.gui.plots.overlays import CompareSpec, PlotComparison
from geogui.gui.plots.style import GRID_COLOR, NONFINITE_COLOR, TEXT_COLOR

NO_PIXELS = 1000  # bins for a view that has no size yet (a tab never shown)
MIN_PIXELS = 50


class Plot(pg.PlotItem):
    """A pyqtgraph plot with its curves and what each shows in full, its right-click entries (log y,
    fit y without outliers, export data or image), its crosshair line, outlier note and mode marks,
    and what it draws when runs are compared (`comparison`)."""

    needs_redraw = Signal()  # a zoom, pan or resize: the curves must be reduced afresh
    export_data_requested = Signal(object)  # this plot
    export_image_requested = Signal(object)  # this plot

    def __init__(self, title: str, y_label: str, compare: CompareSpec, legend: bool = False,
                 legend_columns: int = ONE_ROW) -> None:
        super().__init__(title=title, axisItems={"bottom": CountAxis("bottom")})
        self.base_title = title  # the title while it shows the board's own run
        self.x_master: Plot = self  # the plot whose x range this one follows
        # What each curve shows, in full; curves that draw another's smoothed values are not listed.
        self.shown_by_curve: dict[pg.PlotDataItem, ShownSeries] = {}
        self.drawn_key: tuple | None = None  # the view_key() its curves were last reduced for
        self.outside_view = 0  # points the outlier-excluding fit leaves out of view (0 when off)
        self._style(y_label)
        if legend:
            place_above_view(self, LegendRow(legend_columns))  # never over the data
        self.log_y_action, self.fit_action = self._add_menu_entries()
        self.crosshair = crosshair_line()
        self.addItem(self.crosshair, ignoreBounds=True)
        self.outlier_note = pg.TextItem(color=NONFINITE_COLOR, anchor=(0, 0))
        self.outlier_note.setParentItem(self.getViewBox())  # in the view's pixels: stays in its corner
        self.outlier_note.setPos(4, 2)
        self.outlier_note.setVisible(False)
        self.mode_marks = ModeMarksItem()
        self.mode_marks.add_to(self)
        self.comparison = PlotComparison(self, compare)
        view = self.getViewBox()
        view.sigXRangeChanged.connect(self._on_view_changed)
        view.sigResized.connect(self._on_view_changed)

    def _style(self, y_label: str) -> None:
        self.setDownsampling(ds=1, auto=False)  # reduced before it is handed over: see draw()
        self.setClipToView(False)
        self.setAutoVisible(y=True)  # y fits what is visible after a zoom in x
        for side in ("left", "bottom"):
            axis = self.getAxis(side)
            # Alpha-blended grid lines cost ~50 ms a paint in software rendering; opaque light lines
            # drawn under the ViewBox (z -100) look the same and cost nothing.
            axis.setPen(pg.mkPen(GRID_COLOR))
            axis.setTextPen(pg.mkPen(TEXT_COLOR))
            axis.setStyle(tickAlpha=255, maxTickLevel=1)  # opaque sub-minor lines would be a mesh
            axis.setZValue(-200)
        self.showGrid(x=True, y=True)
        self.setLabel("left", y_label)
        self.getAxis("left").enableAutoSIPrefix(False)  # "rad (x0.001)" over 500 reads worse than 0.5

    def _add_menu_entries(self) -> tuple[QAction, QAction]:
        menu = self.getViewBox().menu
        menu.addSeparator()
        log_y = menu.addAction("Log y")
        log_y.setCheckable(True)
        log_y.toggled.connect(self.set_log_y)
        fit = menu.addAction("Fit y without outliers")
        fit.setCheckable(True)
        fit.setToolTip("The view leaves out points far beyond the quartiles and says how many; no data is dropped")
        fit.toggled.connect(self.set_fit_without_outliers)
        menu.addAction("Export data…", lambda: self.export_data_requested.emit(self))
        menu.addAction("Export image…", lambda: self.export_image_requested.emit(self))
        return log_y, fit

    def set_x_counts(self, counts: bool) -> None:
        """Whether the x axis counts whole things (steps, tokens): then its ticks are whole numbers."""
        axis = self.getAxis("bottom")
        assert isinstance(axis, CountAxis)
        axis.set_counts(counts)

    def link_x_to(self, master: Plot) -> None:
        self.setXLink(master)
        self.x_master = master

    # -- curves -----------------------------------------------------------------------------------
    def add_curve(self, **style) -> pg.PlotDataItem:
        # The data handed over is already reduced to the view's pixels (see draw).
        return self.plot(**style)

    def remove_curve(self, curve: pg.PlotDataItem) -> None:
        self.removeItem(curve)
        self.shown_by_curve.pop(curve, None)

    def visible_shown(self) -> list[ShownSeries]:
        """What the visible curves show, in full."""
        return [self.shown_by_curve[item] for item in self.listDataItems()
                if item in self.shown_by_curve and item.isVisible()]

    def set_title_text(self, text: str) -> None:
        if self.titleLabel.text != text:  # a new title re-lays out the plot: only when it changed
            self.setTitle(text)

    def refit(self) -> None:
        """Let the view fit all its data again (y stays with the outlier fit when that is on)."""
        self.enableAutoRange(x=True, y=not self.fit_action.isChecked())

    # -- drawing ----------------------------------------------------------------------------------
    def draw(self, curve: pg.PlotDataItem, shown: ShownSeries, smoothed_curve: pg.PlotDataItem | None = None
             ) -> None:
        """Give `curve` what its view can show of `shown` (and `smoothed_curve` the smoothed values)."""
        self.shown_by_curve[curve] = shown
        curve.setData(*self._reduced(curve, shown.x, shown.y))
        if smoothed_curve is not None:
            smoothed = shown.smoothed if shown.smoothed is not None else np.full(len(shown.y), np.nan)
            smoothed_curve.setData(*self._reduced(smoothed_curve, shown.x, smoothed))

    def _reduced(self, curve: pg.PlotDataItem, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if curve.getViewBox() is None or len(x) < 2:
            return x, y
        key = self.view_key()
        self.drawn_key = key
        left, right = (x[0], x[-1]) if key[0] == "auto" else key[1]
        return peak_reduce(x, y, left, right, key[-1])

    def view_key(self) -> tuple:
        """What the reduction of the curves depends on: the shared x range (or "auto": all the data)
        and the view's width in pixels. The x state is the master's: a linked view's own auto-range
        flag is off and its range lags behind the master's until the next paint."""
        view = self.getViewBox()
        width = int(view.width())
        bins = width if width >= MIN_PIXELS else NO_PIXELS  # a view not laid out yet has no real width
        master = self.x_master.getViewBox()
        if master.autoRangeEnabled()[0] or view.autoRangeEnabled()[0]:
            return ("auto", bins)
        return ("range", tuple(master.viewRange()[0]), bins)

    def _on_view_changed(self, *_args) -> None:
        if self.drawn_key != self.view_key():
            self.needs_redraw.emit()

    # -- log y and outliers -----------------------------------------------------------------------
    @property
    def log_y(self) -> bool:
        return self.log_y_action.isChecked()

    def set_log_y(self, on: bool) -> None:
        """A log10 y axis for this plot only (non-positive values are left out of a log view)."""
        if self.log_y_action.isChecked() != on:
            self.log_y_action.setChecked(on)  # calls back here
            return
        self.setLogMode(x=False, y=on)
        self.fit_view()

    def set_fit_without_outliers(self, on: bool) -> None:
        """Fit y to the visible points without the far outliers, and say on the plot how many points
        that leaves out of view. The data is untouched."""
        if self.fit_action.isChecked() != on:
            self.fit_action.setChecked(on)  # calls back here
            return
        if not on:
            self.outside_view = 0
            self.outlier_note.setVisible(False)
            self.enableAutoRange(y=True)
        self.fit_view()

    def fit_view(self) -> None:
        if not self.fit_action.isChecked():
            return
        key = self.view_key()
        fit = fit_without_outliers(visible_values(self.visible_shown(), None if key[0] == "auto" else key[1],
                                                  self.log_y))
        self.outside_view = fit.outside if fit is not None else 0
        if fit is None:
            self.outlier_note.setVisible(False)
            return
        self.getViewBox().setYRange(fit.bottom, fit.top, padding=0)
        self.outlier_note.setText(fit.note)
        self.outlier_note.setVisible(fit.outside > 0)

    def outlier_text(self) -> str:
        """What the outlier note says ("" when it is hidden)."""
        note = self.outlier_note
        return note.textItem.toPlainText() if note.isVisible() else ""

    # -- crosshair --------------------------------------------------------------------------------
    def show_crosshair_at(self, x: float) -> None:
        self.crosshair.setValue(x)
        self.crosshair.setVisible(True)
