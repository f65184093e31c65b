"""Live pyqtgraph views of one run (or several, compared), fed from `RunSeries` and redrawn by a timer.

Records only append to the series and mark the tabs stale; the timer (20 Hz, under a redraw budget)
redraws the visible tab, and only when something new arrived. Every plot shares one x axis (step,
relative wall time or tokens seen) and each curve gets only what its pixels can show: the visible
stretch reduced to each pixel column's minimum and maximum (`peak_reduce`), so a run of a million
steps redraws as fast as a short one and a single spike keeps its full height at any zoom.

What a user reads or exports never comes from the reduced data: every curve keeps a `ShownSeries`
(the full series, raw and smoothed, with run, steps and modes) for the crosshair readout and for
right-click → Export data…. Per plot, the right-click menu also switches the y axis to log and
fits y without outliers, which only changes the view and says on the plot how many points it leaves out.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import pyqtgraph as pg
import pyqtgraph.exporters
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (QComboBox, QFileDialog, QHBoxLayout, QLabel, QMessageBox, QTabWidget, QVBoxLayout,
                               QWidget)

from geogui.engine.metrics import BatchRecord, EvalRecord, LoggedRecord, ModeChange, split_at_mode_changes
from geogui.gui.plots.mode_marks import ModeBand, ModeMark, ModeMarksItem
from geogui.gui.palette import RAW_ALPHA, mode_color
from geogui.gui.plotdata.peak_reduce import peak_reduce, visible_rows
from geogui.gui.plots.controls import SmoothingSlider
from geogui.gui.plotdata.export_table import PlotDataError, write_plot_data
from geogui.gui.plots.redraw_budget import RedrawBudget, TimedGraphicsLayoutWidget
from geogui.gui.plotdata.run_series import RunSeries
from geogui.gui.plotdata.shown_series import ShownSeries, readout
from geogui.settings import Mode

REFRESH_HZ = 20
ALL_ANGLES = "all"
ANGLE_NORMS = "norm"
X_AXES = {"step": "step", "wall_time": "wall time (s)", "tokens": "tokens seen"}
OUTLIER_FENCE = 3.0  # IQRs beyond the quartiles: Tukey's "far out" points are left out of the view
OUTLIER_SAMPLE = 65536  # points the quartiles are estimated from (the count outside is exact)
NO_PIXELS = 1000  # bins for a view that has no size yet (a tab never shown)
MIN_PIXELS = 50

TEXT_COLOR = "#303030"
GRID_COLOR = "#e4e4e4"
NONFINITE_COLOR = "#c62828"

pg.setConfigOptions(background="w", foreground=TEXT_COLOR, antialias=False)


def _curve(plot: pg.PlotItem, **style) -> pg.PlotDataItem:
    # The data handed over is already reduced to the view's pixels (see PlotBoard._draw).
    return plot.plot(**style)


def _color(index: int, count: int):
    # Evenly spaced hues, darkened a little so that yellow and cyan stay readable on white.
    return pg.intColor(index, hues=max(count, 1), maxValue=215)


def _faint(color) -> pg.QtGui.QColor:
    color = pg.mkColor(color)
    color.setAlpha(RAW_ALPHA)
    return color


def _change_label(change: ModeChange) -> str:
    label = _mode_label(change.mode)
    if change.penalty_weight != change.previous_penalty_weight:
        label += f"  w={change.penalty_weight:g}"
    return label


def _mode_label(mode: str) -> str:
    try:
        return Mode(mode).label
    except ValueError:
        return mode


@dataclass(frozen=True)
class Overlay:
    """One run drawn in comparison: a label for the legend and its series (None: the board's own
    series, i.e. the live or opened run, read at every redraw so that it keeps growing)."""

    label: str
    series: RunSeries | None = None


def _mean_angle_norm(series: RunSeries) -> np.ndarray:
    if not series.presentations or not len(series):
        return np.full(len(series), np.nan)
    return series.angle_norms().mean(axis=1)  # NaN where the batch had no angles (standard)


def _busiest_expert(series: RunSeries) -> np.ndarray:
    if series.expert_load is None or not series.expert_load.view().shape[1]:
        return np.full(len(series), np.nan)
    return series.expert_load.view().max(axis=1)


def _mean_ghost(series: RunSeries) -> np.ndarray:
    if series.ghost_activation is None or not series.ghost_activation.view().shape[1]:
        return np.full(len(series), np.nan)
    return series.ghost_activation.view().mean(axis=1)


class ExportTargetError(ValueError):
    """A plot image could not be written; the message names the file and the reason."""


@dataclass
class _Tab:
    """A tab's plots and the function that draws its own run's curves."""

    widget: pg.GraphicsLayoutWidget
    plots: list[pg.PlotItem] = field(default_factory=list)
    draw: Callable[[], None] = lambda: None


@dataclass
class _PlotExtras:
    """Per plot: its right-click actions, crosshair line and outlier note."""

    log_y: QAction
    fit_outliers: QAction
    crosshair: pg.InfiniteLine
    outlier_note: pg.TextItem
    mode_marks: ModeMarksItem
    outside_view: int = 0  # points the outlier-excluding fit leaves out of view (0 when off)


class PlotBoard(QWidget):
    """All plots of a run in tabs: Training (batch time, loss, rotation angles), Learning rates,
    Experts and Throughput."""

    redrawn = Signal(int)  # batches plotted after a redraw

    def __init__(self, parent: QWidget | None = None, refresh_hz: float = REFRESH_HZ) -> None:
        super().__init__(parent)
        self.series = RunSeries(presentations=0, rotation_dimensions=0)
        self.run_label = ""  # the name of the board's own run, for the readout and exported data
        self._expert_names: tuple[str, ...] = ()
        self._stale: set[int] = set()
        self.budget = RedrawBudget()  # drawing may take at most a few % of wall time from training
        # Comparison: with two or more overlays, every plot draws one curve per run instead of its own.
        self.overlays: list[Overlay] = []
        self.overlay_curves: dict[pg.PlotItem, list[pg.PlotDataItem]] = {}
        self.overlay_raw_curves: dict[pg.PlotItem, list[pg.PlotDataItem]] = {}  # faint, under smoothed ones
        self.overlay_legends: dict[pg.PlotItem, pg.LegendItem] = {}
        # plot -> (title when comparing, y of a run, whether that y is the smoothed loss)
        self._compare_y: dict[pg.PlotItem, tuple[str, Callable[[RunSeries], np.ndarray], bool]] = {}
        # What each curve shows, in full; curves that draw another's smoothed values are not listed.
        self.shown: dict[pg.PlotDataItem, ShownSeries] = {}
        self._drawn_view: dict[pg.ViewBox, tuple] = {}
        self._extras: dict[pg.PlotItem, _PlotExtras] = {}
        self._zoom_redraw_pending = False

        self.smoothing = SmoothingSlider()
        self.smoothing.setValue(self.series.smoothing)
        self.smoothing.valueChanged.connect(self._on_smoothing)
        self.x_axis = QComboBox()
        for key, label in X_AXES.items():
            self.x_axis.addItem(label[0].upper() + label[1:], key)
        self.x_axis.setToolTip("What every plot's x axis counts")
        self.x_axis.currentIndexChanged.connect(self._on_x_axis)
        self.angle_view = QComboBox()
        self.angle_view.setToolTip("Which rotation angles to draw")
        self.angle_view.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.angle_view.currentIndexChanged.connect(self._on_angle_view)
        self.readout = QLabel(" ")
        self.readout.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.readout.setToolTip("Under the cursor: run, step, value (raw and smoothed) and mode")

        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        self._tabs: list[_Tab] = []
        self._build_training_tab()
        self._build_lr_tab()
        self._build_experts_tab()
        self._build_throughput_tab()
        master = self.batch_time_plot
        for tab in self._tabs:
            for plot in tab.plots:
                if plot is not master:
                    plot.setXLink(master)
        self.tabs.currentChanged.connect(self._on_tab_changed)
        self._titles = {plot: plot.titleLabel.text for tab in self._tabs for plot in tab.plots}

        controls = QHBoxLayout()
        controls.setContentsMargins(4, 4, 4, 0)
        for widget in (QLabel("X axis"), self.x_axis, QLabel("Loss smoothing"), self.smoothing):
            controls.addWidget(widget)
        controls.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(controls)
        layout.addWidget(self.tabs, 1)
        layout.addWidget(self.readout)

        self.timer = QTimer(self)
        self.timer.setInterval(round(1000 / refresh_hz))
        self.timer.timeout.connect(self._on_tick)
        self.timer.start()

    # -- building ---------------------------------------------------------------------------------
    def _add_tab(self, title: str, controls: list[QWidget] | None = None) -> _Tab:
        graphics = TimedGraphicsLayoutWidget(self.budget)
        page = QWidget()
        column = QVBoxLayout(page)
        column.setContentsMargins(4, 4, 4, 4)
        if controls:
            row = QHBoxLayout()
            for widget in controls:
                row.addWidget(widget)
            row.addStretch(1)
            column.addLayout(row)
        column.addWidget(graphics, 1)
        self.tabs.addTab(page, title)
        tab = _Tab(graphics)
        self._tabs.append(tab)
        # The crosshair follows the mouse at most 30 times a second.
        tab.mouse_proxy = pg.SignalProxy(graphics.scene().sigMouseMoved, rateLimit=30,
                                         slot=lambda event, tab=tab: self._on_mouse_moved(tab, event[0]))
        return tab

    def _add_plot(self, tab: _Tab, title: str, y_label: str, legend: bool = False, legend_columns: int = 1
                  ) -> pg.PlotItem:
        plot = tab.widget.addPlot(row=len(tab.plots), col=0, title=title)
        plot.setDownsampling(ds=1, auto=False)  # reduced before it is handed over: see _draw
        plot.setClipToView(False)
        plot.setAutoVisible(y=True)  # y fits what is visible after a zoom in x
        for side in ("left", "bottom"):
            axis = plot.getAxis(side)
            # Alpha-blended grid lines cost ~50 ms a paint in software rendering; opaque light lines
            # drawn under the ViewBox (z -100) look the same and cost nothing.
            axis.setPen(pg.mkPen(GRID_COLOR))
            axis.setTextPen(pg.mkPen(TEXT_COLOR))
            axis.setStyle(tickAlpha=255, maxTickLevel=1)  # opaque sub-minor lines would be a mesh
            axis.setZValue(-200)
        plot.showGrid(x=True, y=True)
        plot.setLabel("left", y_label)
        plot.getAxis("left").enableAutoSIPrefix(False)  # "rad (x0.001)" over 500 reads worse than 0.5
        if legend:
            plot.addLegend(offset=(-10, 10), labelTextSize="8pt", colCount=legend_columns)
        for previous in tab.plots:
            previous.setLabel("bottom", "")
        plot.setLabel("bottom", self._x_label())
        tab.plots.append(plot)
        self._add_extras(plot)
        return plot

    def _add_extras(self, plot: pg.PlotItem) -> None:
        """The plot's right-click entries, its crosshair line and its outlier note."""
        menu = plot.getViewBox().menu
        menu.addSeparator()
        log_y = menu.addAction("Log y")
        log_y.setCheckable(True)
        log_y.toggled.connect(lambda on, plot=plot: self.set_log_y(plot, on))
        fit = menu.addAction("Fit y without outliers")
        fit.setCheckable(True)
        fit.setToolTip("The view leaves out points far beyond the quartiles and says how many; no data is dropped")
        fit.toggled.connect(lambda on, plot=plot: self.set_fit_without_outliers(plot, on))
        menu.addAction("Export data…", lambda plot=plot: self.ask_export_data(plot))
        menu.addAction("Export image…", lambda plot=plot: self.ask_export_image(plot))
        crosshair = pg.InfiniteLine(angle=90, movable=False, pen=pg.mkPen("#9e9e9e", style=Qt.PenStyle.DotLine))
        crosshair.setVisible(False)
        plot.addItem(crosshair, ignoreBounds=True)
        note = pg.TextItem(color=NONFINITE_COLOR, anchor=(0, 0))
        note.setParentItem(plot.getViewBox())  # in the view's pixels: stays in its corner however it zooms
        note.setPos(4, 2)
        note.setVisible(False)
        marks = ModeMarksItem()
        marks.add_to(plot)
        self._extras[plot] = _PlotExtras(log_y, fit, crosshair, note, marks)
        view = plot.getViewBox()
        view.sigXRangeChanged.connect(self._on_view_changed)
        view.sigResized.connect(self._on_view_changed)

    def _build_training_tab(self) -> None:
        tab = self._add_tab("Training", [QLabel("Angles"), self.angle_view])
        self.batch_time_plot = self._add_plot(tab, "Batch time", "ms")
        self.batch_time_curve = _curve(self.batch_time_plot, pen=pg.mkPen("#37474f"))
        self.loss_plot = self._add_plot(tab, "Loss", "loss", legend=True)
        self.loss_raw_curve = _curve(self.loss_plot, pen=pg.mkPen(_faint("#2196f3")), name="raw", connect="finite")
        self.loss_ema_curve = _curve(self.loss_plot, pen=pg.mkPen("#1565c0", width=2), name="smoothed",
                                     connect="finite")
        self.eval_curve = _curve(self.loss_plot, pen=None, symbol="o", symbolSize=7, symbolBrush="#d81b60",
                                 symbolPen=None, name="eval")
        # In the legend only once there is one (see _draw_nonfinite).
        self.nonfinite_curve = _curve(self.loss_plot, pen=None, symbol="x", symbolSize=10,
                                      symbolBrush=NONFINITE_COLOR, symbolPen=pg.mkPen(NONFINITE_COLOR, width=2))
        self.angle_plot = self._add_plot(tab, "Rotation angles", "rad", legend=True, legend_columns=4)
        self._compare_y[self.batch_time_plot] = ("Batch time", lambda s: s.batch_ms.view(), False)
        self._compare_y[self.loss_plot] = ("Loss (smoothed over raw)", lambda s: s.loss.view(), True)
        self._compare_y[self.angle_plot] = ("Rotation angles: mean norm over presentations", _mean_angle_norm, False)
        self.angle_curves: list[list[pg.PlotDataItem]] = []  # [presentation][angle]
        self.norm_curves: list[pg.PlotDataItem] = []
        self._training_tab = tab
        tab.draw = self._draw_training

    def _build_lr_tab(self) -> None:
        tab = self._add_tab("Learning rates")
        plot = self._add_plot(tab, "Learning rates", "lr", legend=True)
        self.lr_plot = plot
        self._compare_y[plot] = ("Model learning rate", lambda s: s.lr_model.view(), False)
        self.lr_model_curve = _curve(plot, pen=pg.mkPen("#1565c0", width=2), name="model")
        self.lr_rotation_curve = _curve(plot, pen=pg.mkPen("#e0673b", width=2), name="rotation")
        tab.draw = self._draw_lr

    def _build_experts_tab(self) -> None:
        tab = self._add_tab("Experts")
        self.expert_plot = self._add_plot(tab, "Expert load (fraction of routed slots)", "load", legend=True,
                                          legend_columns=2)
        self.ghost_plot = self._add_plot(tab, "Ghost activation", "0 dormant … 1 awake", legend=True)
        self._compare_y[self.expert_plot] = ("Expert load: the busiest expert's share", _busiest_expert, False)
        self._compare_y[self.ghost_plot] = ("Ghost activation: mean over ghosts", _mean_ghost, False)
        self._experts_tab = tab
        tab.draw = self._draw_experts

    def _build_throughput_tab(self) -> None:
        tab = self._add_tab("Throughput")
        self.tokens_plot = self._add_plot(tab, "Tokens per second", "tokens/s")
        self.tokens_curve = _curve(self.tokens_plot, pen=pg.mkPen("#2e7d32"))
        self._compare_y[self.tokens_plot] = ("Tokens per second", lambda s: s.tokens_per_s.view(), False)
        self.memory_plot = self._add_plot(tab, "Memory", "MiB")
        self.memory_curve = _curve(self.memory_plot, pen=pg.mkPen("#6a1b9a"))
        self._compare_y[self.memory_plot] = ("Memory", lambda s: s.memory_mib.view(), False)
        tab.draw = self._draw_throughput

    # -- feeding ----------------------------------------------------------------------------------
    def start_run(self, presentations: int, rotation_dimensions: int, expert_names: tuple[str, ...] = ()) -> None:
        """Clear every plot and size the per-presentation curves for a new run."""
        self.series = RunSeries(presentations, rotation_dimensions, smoothing=self.smoothing.value())
        self._expert_names = expert_names
        for extras in self._extras.values():
            extras.mode_marks.clear()
        self._rebuild_angle_curves()
        self._rebuild_expert_curves(0, 0)
        self._show_comparison()
        self._redraw_everything()

    def _redraw_everything(self) -> None:
        """After the plotted series changed wholesale: redraw now and let every view re-fit its data."""
        self._stale = set(range(len(self._tabs)))
        for tab in self._tabs:
            for plot in tab.plots:
                plot.enableAutoRange(x=True, y=not self._extras[plot].fit_outliers.isChecked())
        self.redraw()

    def append(self, records: list[BatchRecord | EvalRecord]) -> None:
        self.series.append(records)
        self._stale = set(range(len(self._tabs)))

    def load_columns(self, columns) -> None:
        """A run (or what was appended to it) read as columns from disk: no object per batch."""
        self.series.extend_columns(columns, self.add_mode_change)
        self._stale = set(range(len(self._tabs)))

    def load(self, records: Iterable[LoggedRecord]) -> None:
        """Feed records read from disk through the same path as live ones: batches and evaluations to
        `append` (in runs of consecutive records), mode changes to `add_mode_change`."""
        for part in split_at_mode_changes(records):
            if isinstance(part, ModeChange):
                self.add_mode_change(part)
            else:
                self.append(part)

    @property
    def comparing(self) -> bool:
        return len(self.overlays) >= 2

    def set_overlays(self, overlays: list[Overlay]) -> None:
        """Compare runs: with two or more, every plot shows one curve per run, each run in its own colour
        with a legend entry; with fewer, the plots go back to the board's own run in full detail."""
        for curves in (self.overlay_curves, self.overlay_raw_curves):
            for plot, items in curves.items():
                for curve in items:
                    plot.removeItem(curve)
                    self.shown.pop(curve, None)
            curves.clear()
        for legend in self.overlay_legends.values():
            legend.clear()
        self.overlays = list(overlays) if len(overlays) >= 2 else []
        for index, overlay in enumerate(self.overlays):
            if overlay.series is not None:
                overlay.series.set_smoothing(self.smoothing.value())
            color = _color(index, len(self.overlays))
            for plot, (_title, _y, smoothed) in self._compare_y.items():
                if smoothed:  # the raw loss, faint, under the run's smoothed loss
                    raw = _curve(plot, pen=pg.mkPen(_faint(color)), connect="finite")
                    self.overlay_raw_curves.setdefault(plot, []).append(raw)
                curve = _curve(plot, pen=pg.mkPen(color, width=2), connect="finite")  # the plot's legend is hidden
                self.overlay_curves.setdefault(plot, []).append(curve)
                self._overlay_legend(plot).addItem(curve, overlay.label)
        self._show_comparison()
        self._redraw_everything()

    def _overlay_legend(self, plot: pg.PlotItem) -> pg.LegendItem:
        legend = self.overlay_legends.get(plot)
        if legend is None:
            legend = pg.LegendItem(offset=(-10, 10), labelTextSize="8pt")
            legend.setParentItem(plot.getViewBox())
            self.overlay_legends[plot] = legend
        return legend

    def _show_comparison(self) -> None:
        """Show either the runs being compared or the board's own run's curves, legends and segments."""
        comparing = self.comparing
        for plot in self._compare_y:
            overlay = set(self.overlay_curves.get(plot, [])) | set(self.overlay_raw_curves.get(plot, []))
            for item in plot.listDataItems():
                if item not in overlay:
                    item.setVisible(not comparing)
            if plot.legend is not None:
                plot.legend.setVisible(not comparing)
            if plot in self.overlay_legends:
                self.overlay_legends[plot].setVisible(comparing)
            if not comparing:
                self._set_title(plot, self._titles[plot])
        for extras in self._extras.values():
            extras.mode_marks.setVisible(not comparing)
        if not comparing:
            self._show_angle_view()

    def add_mode_change(self, change: ModeChange) -> None:
        """Mark the change on every plot (a labelled dashed line); a new mode also starts a tinted segment."""
        self.series.add_mode_change(change)
        self._stale = set(range(len(self._tabs)))

    def mode_marks(self, plot: pg.PlotItem) -> ModeMarksItem:
        """The item that draws `plot`'s mode segments and mode changes."""
        return self._extras[plot].mode_marks

    # -- x axis -----------------------------------------------------------------------------------
    @property
    def x_kind(self) -> str:
        return self.x_axis.currentData() or "step"

    def _x_label(self) -> str:
        return X_AXES[self.x_kind] if hasattr(self, "x_axis") else X_AXES["step"]

    def _x_of(self, series: RunSeries) -> np.ndarray:
        return series.x_column(self.x_kind).view()

    def _x_at_steps(self, steps, series: RunSeries | None = None) -> np.ndarray:
        return (series or self.series).x_at_steps(self.x_kind, steps)

    def _on_x_axis(self) -> None:
        for tab in self._tabs:
            tab.plots[-1].setLabel("bottom", self._x_label())
        self._redraw_everything()

    # -- drawing ----------------------------------------------------------------------------------
    def redraw(self) -> None:
        """Hand the visible tab's curves their current data, reduced to the view's pixels."""
        self.redraw_tab(self.tabs.currentIndex())
        self.redrawn.emit(len(self.series))

    def redraw_tab(self, index: int) -> None:
        tab = self._tabs[index]
        self._sync_segments(tab)
        if self.comparing:
            self._draw_overlays(tab)
        else:
            tab.draw()
        for plot in tab.plots:
            self._fit_view(plot)
        self._stale.discard(index)

    def _draw(self, curve: pg.PlotDataItem, shown: ShownSeries, smoothed_curve: pg.PlotDataItem | None = None
              ) -> None:
        """Give `curve` what its view can show of `shown` (and `smoothed_curve` the smoothed values)."""
        self.shown[curve] = shown
        curve.setData(*self._reduced(curve, shown.x, shown.y))
        if smoothed_curve is not None:
            smoothed = shown.smoothed if shown.smoothed is not None else np.full(len(shown.y), np.nan)
            smoothed_curve.setData(*self._reduced(smoothed_curve, shown.x, smoothed))

    def _reduced(self, curve: pg.PlotDataItem, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        view = curve.getViewBox()
        if view is None or len(x) < 2:
            return x, y
        key = self._view_key(view)
        self._drawn_view[view] = key
        left, right = (x[0], x[-1]) if key[0] == "auto" else key[1]
        return peak_reduce(x, y, left, right, key[-1])

    def _view_key(self, view: pg.ViewBox) -> tuple:
        """What the reduction of a view's curves depends on: the shared x range (or "auto": all the
        data) and the view's width in pixels. The x state is the master's: a linked view's own
        auto-range flag is off and its range lags behind the master's until the next paint."""
        width = int(view.width())
        bins = width if width >= MIN_PIXELS else NO_PIXELS  # a view not laid out yet has no real width
        master = self.batch_time_plot.getViewBox()
        if master.autoRangeEnabled()[0] or view.autoRangeEnabled()[0]:
            return ("auto", bins)
        return ("range", tuple(master.viewRange()[0]), bins)

    def _on_view_changed(self, view: pg.ViewBox, *_args) -> None:
        # A zoom, pan or resize: the view's curves are reduced afresh, at once when its tab is shown
        # (once per burst of events), else when the tab is next shown.
        if self._drawn_view.get(view) == self._view_key(view):
            return
        index = next((i for i, tab in enumerate(self._tabs) if any(p.getViewBox() is view for p in tab.plots)), None)
        if index is None:
            return
        self._stale.add(index)
        if index == self.tabs.currentIndex() and not self._zoom_redraw_pending:
            self._zoom_redraw_pending = True
            QTimer.singleShot(0, self._redraw_after_view_change)

    def _redraw_after_view_change(self) -> None:
        self._zoom_redraw_pending = False
        if self.tabs.currentIndex() in self._stale:
            self._timed_redraw()

    def _shown(self, name: str, y: np.ndarray, smoothed: np.ndarray | None = None,
               series: RunSeries | None = None, run: str | None = None) -> ShownSeries:
        series = series or self.series
        return ShownSeries(self.run_label if run is None else run, name, series, series.step.view(),
                           self._x_of(series), y, smoothed, series.bin_size)

    def _draw_training(self) -> None:
        series = self.series
        self._draw(self.batch_time_curve, self._shown("batch time (ms)", series.batch_ms.view()))
        self._draw(self.loss_raw_curve, self._shown("loss", series.loss.view(), series.loss_ema.view()),
                   smoothed_curve=self.loss_ema_curve)
        eval_steps = series.eval_step.view()
        self._draw(self.eval_curve, ShownSeries(self.run_label, "eval loss", series, eval_steps,
                                                self._x_at_steps(eval_steps), series.eval_loss.view()))
        self._draw_nonfinite()
        self._draw_angles()
        self._title_batch_time()

    def _draw_nonfinite(self) -> None:
        """A marker at each non-finite loss, at the height of the smoothed loss there (it has no value)."""
        series = self.series
        steps = series.nonfinite_step.view()
        heights = np.zeros(len(steps))
        if len(steps):
            smoothed = series.loss_ema.view()
            finite = np.flatnonzero(np.isfinite(smoothed))
            if len(finite):
                rows = np.searchsorted(series.step.view(), steps)
                heights = smoothed[finite[np.maximum(np.searchsorted(finite, rows) - 1, 0)]]
        self.nonfinite_curve.setData(self._x_at_steps(steps), heights)
        legend = self.loss_plot.legend
        listed = legend.getLabel(self.nonfinite_curve) is not None
        if bool(len(steps)) != listed:
            if listed:
                legend.removeItem(self.nonfinite_curve)
            else:
                legend.addItem(self.nonfinite_curve, "not finite")

    def _draw_lr(self) -> None:
        self._draw(self.lr_model_curve, self._shown("model lr", self.series.lr_model.view()))
        self._draw(self.lr_rotation_curve, self._shown("rotation lr", self.series.lr_rotation.view()))

    def _draw_throughput(self) -> None:
        self._draw(self.tokens_curve, self._shown("tokens/s", self.series.tokens_per_s.view()))
        self._draw(self.memory_curve, self._shown("memory (MiB)", self.series.memory_mib.view()))

    def _draw_overlays(self, tab: _Tab) -> None:
        for plot in tab.plots:
            title, y, smoothed = self._compare_y[plot]
            raw_curves = self.overlay_raw_curves.get(plot, [])
            for index, (overlay, curve) in enumerate(zip(self.overlays, self.overlay_curves.get(plot, []))):
                series = overlay.series or self.series
                name = self._titles[plot] if not smoothed else "loss"
                if smoothed:
                    self._draw(raw_curves[index], self._shown(name, y(series), series.loss_ema.view(), series,
                                                              overlay.label), smoothed_curve=curve)
                else:
                    self._draw(curve, self._shown(name, y(series), series=series, run=overlay.label))
            if plot is self.batch_time_plot:
                means = [f"{o.label} {(o.series or self.series).mean_batch_ms():.1f} ms"
                         for o in self.overlays if len(o.series or self.series)]
                title = "Batch time — mean: " + " · ".join(means) if means else title
            self._set_title(plot, title)

    def _on_tick(self) -> None:
        if self.tabs.currentIndex() in self._stale and self.budget.ready():
            self._timed_redraw()

    def _on_tab_changed(self, index: int) -> None:
        if index in self._stale:
            self._timed_redraw()

    def _timed_redraw(self) -> None:
        start = time.perf_counter()
        self.redraw()
        self.budget.spend(time.perf_counter() - start)  # the paint that follows is charged by the widget

    def _draw_angles(self) -> None:
        series, view = self.series, self.angle_view.currentData()
        if not len(series) or not series.presentations:
            return
        if view == ANGLE_NORMS:
            norms = series.angle_norms()
            for p, curve in enumerate(self.norm_curves):
                self._draw(curve, self._shown(f"{self._presentation_name(p)} norm", norms[:, p]))
            return
        angles = series.angles.view()
        r = series.rotation_dimensions
        for p, curves in enumerate(self.angle_curves):
            if view == ALL_ANGLES or view == p:
                for i, curve in enumerate(curves):
                    self._draw(curve, self._shown(f"p{p} d{i}", angles[:, p * r + i]))

    def _draw_experts(self) -> None:
        series = self.series
        if series.expert_load is None:
            return
        loads, ghosts = series.expert_load.view(), series.ghost_activation.view()
        if len(self.expert_plot.listDataItems()) != loads.shape[1]:
            self._rebuild_expert_curves(loads.shape[1], ghosts.shape[1])
        for i, curve in enumerate(self.expert_plot.listDataItems()):
            self._draw(curve, self._shown(f"{curve.name()} load", loads[:, i]))
        for g, curve in enumerate(self.ghost_plot.listDataItems()):
            self._draw(curve, self._shown(f"{curve.name()} activation", ghosts[:, g]))

    def _title_batch_time(self) -> None:
        """Mean batch time of each mode so far, in the batch-time plot's title: the cost of each mode."""
        series = self.series
        if not len(series) or not series.segments:
            self._set_title(self.batch_time_plot, "Batch time")
            return
        parts = [
            f"<span style='color:{mode_color(mode)}'>{_mode_label(mode)} {series.mean_batch_ms(mode):.1f} ms</span>"
            for mode in series.modes_trained()
        ]
        self._set_title(self.batch_time_plot, "Batch time — mean per mode: " + " · ".join(parts))

    @staticmethod
    def _set_title(plot: pg.PlotItem, text: str) -> None:
        if plot.titleLabel.text != text:  # a new title re-lays out the plot: only when it changed
            plot.setTitle(text)

    def _sync_segments(self, visible: _Tab) -> None:
        """Hand the visible tab's plots the mode segments and changes at today's x positions (the last
        segment grows with the run; a wall-time or token axis moves them all). The other tabs catch up
        when they are shown."""
        segments, changes = self.series.segments, self.series.mode_changes
        bands, marks = [], []
        if segments:
            last_step = float(self.series.step.view()[-1]) if len(self.series) else segments[-1].start_step
            edges = self._x_at_steps([s.start_step - 0.5 for s in segments] + [last_step + 0.5])
            bands = [ModeBand(float(left), float(max(left, right)), mode_color(segment.mode))
                     for segment, left, right in zip(segments, edges, edges[1:])]
        if changes:
            positions = self._x_at_steps([change.step - 0.5 for change in changes])
            marks = [ModeMark(float(x), mode_color(change.mode), _change_label(change))
                     for change, x in zip(changes, positions)]
        for plot in visible.plots:
            self._extras[plot].mode_marks.set_marks(bands, marks)

    def _rebuild_angle_curves(self) -> None:
        plot = self.angle_plot
        for item in plot.listDataItems():
            plot.removeItem(item)
            self.shown.pop(item, None)
        plot.legend.clear()
        P, r = self.series.presentations, self.series.rotation_dimensions
        self.angle_curves, self.norm_curves = [], []
        for p in range(P):
            pen = pg.mkPen(_color(p, P), width=1)
            self.angle_curves.append([_curve(plot, pen=pen, connect="finite") for _ in range(r)])
            self.norm_curves.append(_curve(plot, pen=pen, connect="finite"))
            # The legend explains colours (one per presentation), whichever view is chosen.
            plot.legend.addItem(pg.PlotDataItem(pen=pen), self._presentation_name(p))
        chosen = self.angle_view.currentData()  # keep the user's choice across runs
        self.angle_view.blockSignals(True)
        self.angle_view.clear()
        self.angle_view.addItem("All presentations × angles", ALL_ANGLES)
        self.angle_view.addItem("Norm per presentation", ANGLE_NORMS)
        for p in range(P):
            self.angle_view.addItem(f"Presentation {self._presentation_name(p)}", p)
        self.angle_view.setCurrentIndex(max(0, self.angle_view.findData(chosen)))
        self.angle_view.blockSignals(False)
        self._show_angle_view()

    def _rebuild_expert_curves(self, experts: int, ghosts: int) -> None:
        for plot in (self.expert_plot, self.ghost_plot):
            for item in plot.listDataItems():
                plot.removeItem(item)
                self.shown.pop(item, None)
            plot.legend.clear()
        names = list(self._expert_names) if len(self._expert_names) == experts else [f"#{i}" for i in range(experts)]
        for i in range(experts):
            _curve(self.expert_plot, pen=pg.mkPen(_color(i, experts), width=1), name=names[i])
        for g in range(ghosts):
            name = names[experts - ghosts + g] if experts >= ghosts else f"G{g}"
            color = _color(experts - ghosts + g, experts)
            _curve(self.ghost_plot, pen=pg.mkPen(color, width=1), name=name)
        if self.comparing:
            self._show_comparison()

    def _presentation_name(self, p: int) -> str:
        return self._expert_names[p] if p < len(self._expert_names) else str(p + 1)

    def _show_angle_view(self) -> None:
        view = self.angle_view.currentData()
        for p, curves in enumerate(self.angle_curves):
            for curve in curves:
                curve.setVisible(view == ALL_ANGLES or view == p)
            self.norm_curves[p].setVisible(view == ANGLE_NORMS)

    def _on_angle_view(self) -> None:
        self._show_angle_view()
        self._stale.add(self._tabs.index(self._training_tab))

    def _on_smoothing(self, value: float) -> None:
        self.series.set_smoothing(value)
        for overlay in self.overlays:
            if overlay.series is not None:
                overlay.series.set_smoothing(value)
        self._stale.add(self._tabs.index(self._training_tab))

    # -- log y and outliers -----------------------------------------------------------------------
    def set_log_y(self, plot: pg.PlotItem, on: bool) -> None:
        """A log10 y axis for this plot only (non-positive values are left out of a log view)."""
        extras = self._extras[plot]
        if extras.log_y.isChecked() != on:
            extras.log_y.setChecked(on)  # calls back here
            return
        plot.setLogMode(x=False, y=on)
        self._fit_view(plot)

    def set_fit_without_outliers(self, plot: pg.PlotItem, on: bool) -> None:
        """Fit y to the visible points without the far outliers (Tukey's fences, 3 IQRs beyond the
        quartiles), and say on the plot how many points that leaves out of view. The data is untouched."""
        extras = self._extras[plot]
        if extras.fit_outliers.isChecked() != on:
            extras.fit_outliers.setChecked(on)  # calls back here
            return
        if not on:
            extras.outside_view = 0
            extras.outlier_note.setVisible(False)
            plot.enableAutoRange(y=True)
        self._fit_view(plot)

    def points_outside_view(self, plot: pg.PlotItem) -> int:
        return self._extras[plot].outside_view

    def outlier_note(self, plot: pg.PlotItem) -> str:
        note = self._extras[plot].outlier_note
        return note.textItem.toPlainText() if note.isVisible() else ""

    def _visible_shown(self, plot: pg.PlotItem) -> list[ShownSeries]:
        return [self.shown[item] for item in plot.listDataItems() if item in self.shown and item.isVisible()]

    def _fit_view(self, plot: pg.PlotItem) -> None:
        extras = self._extras[plot]
        if not extras.fit_outliers.isChecked():
            return
        view = plot.getViewBox()
        log_y = bool(extras.log_y.isChecked())
        key = self._view_key(view)
        x_range = None if key[0] == "auto" else key[1]
        visible = []
        for shown in self._visible_shown(plot):
            start, end = (0, len(shown.x)) if x_range is None else visible_rows(shown.x, *x_range)
            values = shown.y[start:end]
            if log_y:
                with np.errstate(divide="ignore", invalid="ignore"):
                    values = np.log10(values)
            visible.append(values[np.isfinite(values)])
        values = np.concatenate(visible) if visible else np.zeros(0)
        if not len(values):
            extras.outside_view = 0
            extras.outlier_note.setVisible(False)
            return
        sample = values[:: max(1, len(values) // OUTLIER_SAMPLE)]
        q1, q3 = np.quantile(sample, [0.25, 0.75])
        low = max(float(values.min()), q1 - OUTLIER_FENCE * (q3 - q1))
        high = min(float(values.max()), q3 + OUTLIER_FENCE * (q3 - q1))
        extras.outside_view = int(np.count_nonzero((values < low) | (values > high)))
        pad = (high - low) * 0.05 or max(abs(high) * 0.05, 1e-9)
        view.setYRange(low - pad, high + pad, padding=0)
        extras.outlier_note.setText(f"{extras.outside_view} point{'s' if extras.outside_view != 1 else ''} outside view")
        extras.outlier_note.setVisible(extras.outside_view > 0)

    # -- crosshair --------------------------------------------------------------------------------
    def _on_mouse_moved(self, tab: _Tab, scene_pos) -> None:
        for plot in tab.plots:
            view = plot.getViewBox()
            if view.sceneBoundingRect().contains(scene_pos):
                point = view.mapSceneToView(scene_pos)
                self.show_crosshair(plot, point.x(), point.y())
                return

    def show_crosshair(self, plot: pg.PlotItem, x: float, y: float) -> str:
        """A vertical line at x on every plot of the tab (they share x), and the readout of the curve
        of `plot` nearest to (x, y) in view coordinates. Returns the readout."""
        tab = next(tab for tab in self._tabs if plot in tab.plots)
        for other in tab.plots:
            line = self._extras[other].crosshair
            line.setValue(x)
            line.setVisible(True)
        text = readout(self._visible_shown(plot), x, y, X_AXES[self.x_kind], self._extras[plot].log_y.isChecked())
        self.readout.setText(text or " ")
        return text

    # -- data and images --------------------------------------------------------------------------
    def plot_items(self) -> list[tuple[str, pg.PlotItem]]:
        """Every plot with a name for menus and file names: (tab title: plot title)."""
        items = []
        for index, tab in enumerate(self._tabs):
            for plot in tab.plots:
                title = self._titles[plot]
                name = self.tabs.tabText(index)
                items.append((name if title == name else f"{name}: {title}", plot))
        return items

    def _plot_name(self, plot: pg.PlotItem) -> str:
        return next(name for name, item in self.plot_items() if item is plot)

    def shown_data(self, plot: pg.PlotItem) -> list[ShownSeries]:
        """Exactly what `plot` shows, in full: every visible curve of every visible run."""
        index = next(i for i, tab in enumerate(self._tabs) if plot in tab.plots)
        self.redraw_tab(index)  # a tab not shown lately may hold older data
        return self._visible_shown(plot)

    def export_data(self, out: Path, plot: pg.PlotItem) -> int:
        """Write the series `plot` shows as CSV or JSON (by the suffix of `out`); returns the points written.
        Raises PlotDataError with the reason when the file cannot be written."""
        return write_plot_data(Path(out), self._plot_name(plot), X_AXES[self.x_kind], self.shown_data(plot),
                               log_y=self._extras[plot].log_y.isChecked())

    def ask_export_data(self, plot: pg.PlotItem) -> None:
        out = self._ask_save_path(f"Export data of {self._plot_name(plot)}", self._plot_name(plot),
                                  {"CSV, one row per point (*.csv)": ".csv", "JSON (*.json)": ".json"})
        if out is not None:
            try:
                self.export_data(out, plot)
            except PlotDataError as exc:
                QMessageBox.warning(self, "Export failed", str(exc))

    def ask_export_image(self, plot: pg.PlotItem) -> None:
        out = self._ask_save_path(f"Export image of {self._plot_name(plot)}", self._plot_name(plot),
                                  {"PNG image (*.png)": ".png", "SVG drawing (*.svg)": ".svg"})
        if out is not None:
            try:
                self.export_image(out, plot)
            except ExportTargetError as exc:
                QMessageBox.warning(self, "Export failed", str(exc))

    def _ask_save_path(self, title: str, name: str, filters: dict[str, str]) -> Path | None:
        """A file chosen in a save dialog, given the chosen filter's suffix when it has none of them."""
        first_suffix = next(iter(filters.values()))
        out, chosen = QFileDialog.getSaveFileName(self, title, str(Path.home() / f"{_slug(name)}{first_suffix}"),
                                                  ";;".join(filters))
        if not out:
            return None
        out = Path(out)
        if out.suffix.lower() not in filters.values():
            out = out.with_name(out.name + filters.get(chosen, first_suffix))
        return out

    def export_image(self, out: Path, plot: pg.PlotItem | None = None) -> list[Path]:
        """Write one plot, or every tab (one file per tab), as PNG or SVG by the suffix of `out`.
        Raises ExportTargetError with the reason when a file cannot be written."""
        out = Path(out)
        suffix = out.suffix.lower()
        if suffix not in (".png", ".svg"):
            raise ExportTargetError(f"{out}: plots are written as .png or .svg, not {suffix or 'no suffix'!r}")
        current = self.tabs.currentIndex()
        written: list[Path] = []
        try:
            for index, tab in enumerate(self._tabs):
                if plot is not None and plot not in tab.plots:
                    continue
                slug = _slug(self.tabs.tabText(index))
                target = out if plot is not None else out.with_name(f"{out.stem}-{slug}{out.suffix}")
                self._show_tab_for_export(index)
                self._write_image(plot if plot is not None else tab.widget.ci, target, suffix)
                written.append(target)
        finally:
            self.tabs.setCurrentIndex(current)
        return written

    def _show_tab_for_export(self, index: int) -> None:
        # A tab that was never shown has neither its size nor its data: show it, lay it out, draw it.
        self.tabs.setCurrentIndex(index)
        tab = self._tabs[index]
        tab.widget.ci.layout.activate()
        self.redraw_tab(index)

    @staticmethod
    def _write_image(item, target: Path, suffix: str) -> None:
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            with open(target, "ab"):  # fails with the reason when the target is not writable
                pass
        except OSError as exc:
            raise ExportTargetError(f"{target}: cannot write ({exc.strerror or exc})") from None
        exporter = (pg.exporters.ImageExporter(item) if suffix == ".png" else pg.exporters.SVGExporter(item))
        try:
            exporter.export(str(target))
        except OSError as exc:
            raise ExportTargetError(f"{target}: cannot write ({exc.strerror or exc})") from None
        except ValueError:
            if suffix != ".svg":
                raise
            # pyqtgraph's SVG clean-up cannot parse the closed paths ("... Z") that recent Qt writes
            # (pyqtgraph issue #3495); Qt's own SVG generator draws the same scene region instead.
            _render_svg(item, target)
        if not target.is_file() or target.stat().st_size == 0:
            raise ExportTargetError(f"{target}: the image could not be written")


def _render_svg(item, target: Path) -> None:
    from PySide6.QtCore import QRectF
    from PySide6.QtGui import QPainter
    from PySide6.QtSvg import QSvgGenerator

    source = item.sceneBoundingRect()
    generator = QSvgGenerator()
    generator.setFileName(str(target))
    generator.setSize(source.size().toSize())
    generator.setViewBox(QRectF(0, 0, source.width(), source.height()))
    views = item.scene().views()
    if views:  # at the default 72 dpi, text and axes would be drawn at 72/96 of the data's scale
        generator.setResolution(views[0].logicalDpiX())
    painter = QPainter(generator)
    try:
        painter.fillRect(QRectF(0, 0, source.width(), source.height()), pg.mkColor("w"))
        item.scene().render(painter, QRectF(0, 0, source.width(), source.height()), source)
    finally:
        painter.end()


def _slug(text: str) -> str:
    return "-".join("".join(c if c.isalnum() else " " for c in text.lower()).split())
