"""Live pyqtgraph views of one run, fed from `RunSeries` and redrawn by a single timer.

Records only append to the series and mark the tabs stale; the timer (20 Hz) redraws the visible
tab, and only when something new arrived. Every plot shares the step axis (X-linked), downsamples
to the pixels it has (`peak` keeps spikes visible) and clips to the visible range, so a run of a
million steps redraws as fast as a short one.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import QComboBox, QDoubleSpinBox, QHBoxLayout, QLabel, QTabWidget, QVBoxLayout, QWidget

from geogui.engine.metrics import BatchRecord, EvalRecord, ModeChange
from geogui.gui.palette import RAW_ALPHA, SEGMENT_ALPHA, mode_color
from geogui.gui.redraw_budget import RedrawBudget, TimedGraphicsLayoutWidget
from geogui.gui.run_series import RunSeries
from geogui.settings import Mode

REFRESH_HZ = 20
ALL_ANGLES = "all"
ANGLE_NORMS = "norm"

TEXT_COLOR = "#303030"
GRID_COLOR = "#e4e4e4"

pg.setConfigOptions(background="w", foreground=TEXT_COLOR, antialias=False)


def _curve(plot: pg.PlotItem, **style) -> pg.PlotDataItem:
    # Peak downsampling keeps each pixel column's min and max, so one bin per pixel is lossless to the
    # eye; pyqtgraph's default of 5 makes paths (and paints) five times longer.
    return plot.plot(autoDownsampleFactor=1.0, **style)


def _color(index: int, count: int):
    # Evenly spaced hues, darkened a little so that yellow and cyan stay readable on white.
    return pg.intColor(index, hues=max(count, 1), maxValue=215)


def _mode_label(mode: str) -> str:
    try:
        return Mode(mode).label
    except ValueError:
        return mode


@dataclass
class _Tab:
    """A tab's plots and how to fill its curves: each binding is (curve, x getter, y getter)."""

    widget: pg.GraphicsLayoutWidget
    plots: list[pg.PlotItem] = field(default_factory=list)
    bindings: list[tuple[pg.PlotDataItem, Callable[[], np.ndarray], Callable[[], np.ndarray]]] = field(
        default_factory=list
    )


class PlotBoard(QWidget):
    """All plots of a run in tabs: Training (batch time, loss, rotation angles), Learning rates,
    Experts and Throughput."""

    redrawn = Signal(int)  # batches plotted after a redraw

    def __init__(self, parent: QWidget | None = None, refresh_hz: float = REFRESH_HZ) -> None:
        super().__init__(parent)
        self.series = RunSeries(presentations=0, rotation_dimensions=0)
        self._expert_names: tuple[str, ...] = ()
        self._stale: set[int] = set()
        self.budget = RedrawBudget()  # drawing may take at most a few % of wall time from training
        # Per mode segment, one shaded region on every plot; per mode change, one marker on every plot.
        self._segment_regions: list[list[tuple[pg.PlotItem, pg.LinearRegionItem]]] = []
        self.markers: list[tuple[pg.PlotItem, pg.InfiniteLine]] = []

        self.smoothing = QDoubleSpinBox()
        self.smoothing.setRange(0.0, 0.999)
        self.smoothing.setSingleStep(0.05)
        self.smoothing.setDecimals(3)
        self.smoothing.setValue(self.series.smoothing)
        self.smoothing.setToolTip("EMA factor of the smoothed loss: 0 = raw, closer to 1 = smoother")
        self.smoothing.valueChanged.connect(self._on_smoothing)
        self.angle_view = QComboBox()
        self.angle_view.setToolTip("Which rotation angles to draw")
        self.angle_view.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.angle_view.currentIndexChanged.connect(self._on_angle_view)

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

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.tabs)

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
        return tab

    def _add_plot(self, tab: _Tab, title: str, y_label: str, legend: bool = False, legend_columns: int = 1
                  ) -> pg.PlotItem:
        plot = tab.widget.addPlot(row=len(tab.plots), col=0, title=title)
        plot.setDownsampling(auto=True, mode="peak")
        plot.setClipToView(True)
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
        plot.setLabel("bottom", "step")
        tab.plots.append(plot)
        return plot

    def _bind(self, tab: _Tab, plot: pg.PlotItem, y: Callable[[], np.ndarray], x: Callable[[], np.ndarray] | None = None,
              **style) -> pg.PlotDataItem:
        curve = _curve(plot, **style)
        tab.bindings.append((curve, x or (lambda: self.series.step.view()), y))  # late: series is replaced per run
        return curve

    def _build_training_tab(self) -> None:
        tab = self._add_tab("Training", [QLabel("Loss smoothing"), self.smoothing, QLabel("Angles"), self.angle_view])
        self.batch_time_plot = self._add_plot(tab, "Batch time", "ms")
        self._bind(tab, self.batch_time_plot, lambda: self.series.batch_ms.view(), pen=pg.mkPen("#37474f"))
        self.loss_plot = self._add_plot(tab, "Loss", "loss", legend=True)
        self.loss_raw_curve = self._bind(tab, self.loss_plot, lambda: self.series.loss.view(),
                                         pen=pg.mkPen((33, 150, 243, RAW_ALPHA)), name="raw", connect="finite")
        self.loss_ema_curve = self._bind(tab, self.loss_plot, lambda: self.series.loss_ema.view(),
                                         pen=pg.mkPen("#1565c0", width=2), name="EMA", connect="finite")
        self.eval_curve = self._bind(tab, self.loss_plot, lambda: self.series.eval_loss.view(),
                                     x=lambda: self.series.eval_step.view(), pen=None, symbol="o", symbolSize=7,
                                     symbolBrush="#d81b60", symbolPen=None, name="eval")
        self.angle_plot = self._add_plot(tab, "Rotation angles", "rad", legend=True, legend_columns=4)
        self.angle_curves: list[list[pg.PlotDataItem]] = []  # [presentation][angle]
        self.norm_curves: list[pg.PlotDataItem] = []
        self._training_tab = tab

    def _build_lr_tab(self) -> None:
        tab = self._add_tab("Learning rates")
        plot = self._add_plot(tab, "Learning rates", "lr", legend=True)
        self._bind(tab, plot, lambda: self.series.lr_model.view(), pen=pg.mkPen("#1565c0", width=2), name="model")
        self._bind(tab, plot, lambda: self.series.lr_rotation.view(), pen=pg.mkPen("#e0673b", width=2),
                   name="rotation")

    def _build_experts_tab(self) -> None:
        tab = self._add_tab("Experts")
        self.expert_plot = self._add_plot(tab, "Expert load (fraction of routed slots)", "load", legend=True,
                                          legend_columns=2)
        self.ghost_plot = self._add_plot(tab, "Ghost activation", "0 dormant … 1 awake", legend=True)
        self._experts_tab = tab

    def _build_throughput_tab(self) -> None:
        tab = self._add_tab("Throughput")
        plot = self._add_plot(tab, "Tokens per second", "tokens/s")
        self._bind(tab, plot, lambda: self.series.tokens_per_s.view(), pen=pg.mkPen("#2e7d32"))
        plot = self._add_plot(tab, "Memory", "MiB")
        self._bind(tab, plot, lambda: self.series.memory_mib.view(), pen=pg.mkPen("#6a1b9a"))

    # -- feeding ----------------------------------------------------------------------------------
    def start_run(self, presentations: int, rotation_dimensions: int, expert_names: tuple[str, ...] = ()) -> None:
        """Clear every plot and size the per-presentation curves for a new run."""
        self.series = RunSeries(presentations, rotation_dimensions, smoothing=self.smoothing.value())
        self._expert_names = expert_names
        for plot, item in [pair for regions in self._segment_regions for pair in regions] + self.markers:
            plot.removeItem(item)
        self._segment_regions.clear()
        self.markers.clear()
        self._rebuild_angle_curves()
        self._rebuild_expert_curves(0, 0)
        self._stale = set(range(len(self._tabs)))
        self.redraw()
        for tab in self._tabs:
            for plot in tab.plots:
                plot.enableAutoRange()

    def append(self, records: list[BatchRecord | EvalRecord]) -> None:
        self.series.append(records)
        self._stale = set(range(len(self._tabs)))

    def add_mode_change(self, change: ModeChange) -> None:
        """Draw a labelled marker at the change on every plot; a new mode also starts a shaded segment."""
        self.series.add_mode_change(change)
        label = _mode_label(change.mode)
        if change.penalty_weight != change.previous_penalty_weight:
            label += f"  w={change.penalty_weight:g}"
        for tab in self._tabs:
            for plot in tab.plots:
                marker = pg.InfiniteLine(
                    pos=change.step - 0.5, angle=90, movable=False,
                    pen=pg.mkPen(mode_color(change.mode), width=1.5, style=Qt.PenStyle.DashLine),
                    label=label, labelOpts={"position": 0.92, "color": mode_color(change.mode), "movable": True},
                )
                plot.addItem(marker, ignoreBounds=True)
                self.markers.append((plot, marker))
        self._stale = set(range(len(self._tabs)))

    # -- drawing ----------------------------------------------------------------------------------
    def redraw(self) -> None:
        """Hand the visible tab's curves their current data (views, no copies)."""
        index = self.tabs.currentIndex()
        tab = self._tabs[index]
        self._sync_segments(tab)
        for curve, x, y in tab.bindings:
            curve.setData(x(), y())
        if tab is self._training_tab:
            self._draw_angles()
            self._title_batch_time()
        elif tab is self._experts_tab:
            self._draw_experts()
        self._stale.discard(index)
        self.redrawn.emit(len(self.series))

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
        steps = series.step.view()
        if view == ANGLE_NORMS:
            norms = series.angle_norms()
            for p, curve in enumerate(self.norm_curves):
                curve.setData(steps, norms[:, p])
            return
        angles = series.angles.view()
        r = series.rotation_dimensions
        for p, curves in enumerate(self.angle_curves):
            if view == ALL_ANGLES or view == p:
                for i, curve in enumerate(curves):
                    curve.setData(steps, angles[:, p * r + i])

    def _draw_experts(self) -> None:
        series = self.series
        if series.expert_load is None:
            return
        loads, ghosts = series.expert_load.view(), series.ghost_activation.view()
        if len(self.expert_plot.listDataItems()) != loads.shape[1]:
            self._rebuild_expert_curves(loads.shape[1], ghosts.shape[1])
        steps = series.step.view()
        for i, curve in enumerate(self.expert_plot.listDataItems()):
            curve.setData(steps, loads[:, i])
        for g, curve in enumerate(self.ghost_plot.listDataItems()):
            curve.setData(steps, ghosts[:, g])

    def _title_batch_time(self) -> None:
        """Mean batch time of each mode so far, in the batch-time plot's title: the cost of each mode."""
        series = self.series
        if not len(series) or not series.segments:
            self._set_title(self.batch_time_plot, "Batch time")
            return
        steps, ms = series.step.view(), series.batch_ms.view()
        bounds = [int(np.searchsorted(steps, s.start_step)) for s in series.segments] + [len(steps)]
        totals: dict[str, list[float]] = {}
        for segment, start, end in zip(series.segments, bounds, bounds[1:]):
            total = totals.setdefault(segment.mode, [0.0, 0])
            total[0] += float(ms[start:end].sum())
            total[1] += end - start
        parts = [
            f"<span style='color:{mode_color(mode)}'>{_mode_label(mode)} {s / n:.1f} ms</span>"
            for mode, (s, n) in totals.items() if n
        ]
        self._set_title(self.batch_time_plot, "Batch time — mean per mode: " + " · ".join(parts))

    @staticmethod
    def _set_title(plot: pg.PlotItem, text: str) -> None:
        if plot.titleLabel.text != text:  # a new title re-lays out the plot: only when it changed
            plot.setTitle(text)

    def _sync_segments(self, visible: _Tab) -> None:
        """One shaded region per mode segment on every plot; the last one grows with the run.
        Only the visible tab's regions are moved: the others catch up when their tab is shown."""
        segments = self.series.segments
        plots = [plot for tab in self._tabs for plot in tab.plots]
        while len(self._segment_regions) < len(segments):
            color = pg.mkColor(mode_color(segments[len(self._segment_regions)].mode))
            color.setAlpha(SEGMENT_ALPHA)
            regions = []
            for plot in plots:
                region = pg.LinearRegionItem(movable=False, brush=color, pen=pg.mkPen(None))
                region.setZValue(-100)  # behind the curves
                plot.addItem(region, ignoreBounds=True)
                regions.append((plot, region))
            self._segment_regions.append(regions)
        if not segments:
            return
        last_step = float(self.series.step.view()[-1]) if len(self.series) else segments[-1].start_step
        edges = [s.start_step - 0.5 for s in segments] + [last_step + 0.5]
        for regions, left, right in zip(self._segment_regions, edges, edges[1:]):
            for plot, region in regions:
                if plot in visible.plots:
                    region.setRegion((left, max(left, right)))

    def _rebuild_angle_curves(self) -> None:
        plot = self.angle_plot
        for item in plot.listDataItems():
            plot.removeItem(item)
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
            plot.legend.clear()
        names = list(self._expert_names) if len(self._expert_names) == experts else [f"#{i}" for i in range(experts)]
        for i in range(experts):
            _curve(self.expert_plot, pen=pg.mkPen(_color(i, experts), width=1.5), name=names[i])
        for g in range(ghosts):
            name = names[experts - ghosts + g] if experts >= ghosts else f"G{g}"
            color = _color(experts - ghosts + g, experts)
            _curve(self.ghost_plot, pen=pg.mkPen(color, width=1.5), name=name)

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
        self._stale.add(self._tabs.index(self._training_tab))
