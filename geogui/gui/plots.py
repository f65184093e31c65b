"""Live pyqtgraph views of one run, fed from `RunSeries` and redrawn by a single timer.

Records only append to the series and mark the tabs stale; the timer (20 Hz) redraws the visible
tab, and only when something new arrived. Every plot shares the step axis (X-linked), downsamples
to the pixels it has (`peak` keeps spikes visible) and clips to the visible range, so a run of a
million steps redraws as fast as a short one.
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
from PySide6.QtWidgets import QComboBox, QDoubleSpinBox, QHBoxLayout, QLabel, QTabWidget, QVBoxLayout, QWidget

from geogui.engine.metrics import BatchRecord, EvalRecord, LoggedRecord, ModeChange
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
        # Comparison: with two or more overlays, every plot draws one curve per run instead of its own.
        self.overlays: list[Overlay] = []
        self.overlay_curves: dict[pg.PlotItem, list[pg.PlotDataItem]] = {}
        self.overlay_legends: dict[pg.PlotItem, pg.LegendItem] = {}
        self._compare_y: dict[pg.PlotItem, tuple[str, Callable[[RunSeries], np.ndarray]]] = {}

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
        self._titles = {plot: plot.titleLabel.text for tab in self._tabs for plot in tab.plots}

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
        self._compare_y[self.batch_time_plot] = ("Batch time", lambda s: s.batch_ms.view())
        self._compare_y[self.loss_plot] = ("Loss (EMA)", lambda s: s.loss_ema.view())
        self._compare_y[self.angle_plot] = ("Rotation angles: mean norm over presentations", _mean_angle_norm)
        self.angle_curves: list[list[pg.PlotDataItem]] = []  # [presentation][angle]
        self.norm_curves: list[pg.PlotDataItem] = []
        self._training_tab = tab

    def _build_lr_tab(self) -> None:
        tab = self._add_tab("Learning rates")
        plot = self._add_plot(tab, "Learning rates", "lr", legend=True)
        self.lr_plot = plot
        self._compare_y[plot] = ("Model learning rate", lambda s: s.lr_model.view())
        self._bind(tab, plot, lambda: self.series.lr_model.view(), pen=pg.mkPen("#1565c0", width=2), name="model")
        self._bind(tab, plot, lambda: self.series.lr_rotation.view(), pen=pg.mkPen("#e0673b", width=2),
                   name="rotation")

    def _build_experts_tab(self) -> None:
        tab = self._add_tab("Experts")
        self.expert_plot = self._add_plot(tab, "Expert load (fraction of routed slots)", "load", legend=True,
                                          legend_columns=2)
        self.ghost_plot = self._add_plot(tab, "Ghost activation", "0 dormant … 1 awake", legend=True)
        self._compare_y[self.expert_plot] = ("Expert load: the busiest expert's share", _busiest_expert)
        self._compare_y[self.ghost_plot] = ("Ghost activation: mean over ghosts", _mean_ghost)
        self._experts_tab = tab

    def _build_throughput_tab(self) -> None:
        tab = self._add_tab("Throughput")
        plot = self._add_plot(tab, "Tokens per second", "tokens/s")
        self._bind(tab, plot, lambda: self.series.tokens_per_s.view(), pen=pg.mkPen("#2e7d32"))
        self._compare_y[plot] = ("Tokens per second", lambda s: s.tokens_per_s.view())
        plot = self._add_plot(tab, "Memory", "MiB")
        self._bind(tab, plot, lambda: self.series.memory_mib.view(), pen=pg.mkPen("#6a1b9a"))
        self._compare_y[plot] = ("Memory", lambda s: s.memory_mib.view())

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
        self._show_comparison()
        self._redraw_everything()

    def _redraw_everything(self) -> None:
        """After the plotted series changed wholesale: redraw now and let every view re-fit its data."""
        self._stale = set(range(len(self._tabs)))
        self.redraw()
        for tab in self._tabs:
            for plot in tab.plots:
                plot.enableAutoRange()

    def append(self, records: list[BatchRecord | EvalRecord]) -> None:
        self.series.append(records)
        self._stale = set(range(len(self._tabs)))

    def load(self, records: Iterable[LoggedRecord]) -> None:
        """Feed records read from disk through the same path as live ones: batches and evaluations to
        `append` (in runs of consecutive records), mode changes to `add_mode_change`."""
        chunk: list[BatchRecord | EvalRecord] = []
        for record in records:
            if isinstance(record, (BatchRecord, EvalRecord)):
                chunk.append(record)
            elif isinstance(record, ModeChange):
                if chunk:
                    self.append(chunk)
                    chunk = []
                self.add_mode_change(record)
        if chunk:
            self.append(chunk)

    @property
    def comparing(self) -> bool:
        return len(self.overlays) >= 2

    def set_overlays(self, overlays: list[Overlay]) -> None:
        """Compare runs: with two or more, every plot shows one curve per run, each run in its own colour
        with a legend entry; with fewer, the plots go back to the board's own run in full detail."""
        for plot, curves in self.overlay_curves.items():
            for curve in curves:
                plot.removeItem(curve)
        for legend in self.overlay_legends.values():
            legend.clear()
        self.overlay_curves.clear()
        self.overlays = list(overlays) if len(overlays) >= 2 else []
        for index, overlay in enumerate(self.overlays):
            if overlay.series is not None:
                overlay.series.set_smoothing(self.smoothing.value())
            pen = pg.mkPen(_color(index, len(self.overlays)), width=2)
            for plot in self._compare_y:
                curve = _curve(plot, pen=pen, connect="finite")  # no name: the plot's own legend is hidden
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
            overlay = set(self.overlay_curves.get(plot, []))
            for item in plot.listDataItems():
                if item not in overlay:
                    item.setVisible(not comparing)
            if plot.legend is not None:
                plot.legend.setVisible(not comparing)
            if plot in self.overlay_legends:
                self.overlay_legends[plot].setVisible(comparing)
            if not comparing:
                self._set_title(plot, self._titles[plot])
        for plot, item in [pair for regions in self._segment_regions for pair in regions] + self.markers:
            item.setVisible(not comparing)
        if not comparing:
            self._show_angle_view()

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
                marker.setVisible(not self.comparing)
                self.markers.append((plot, marker))
        self._stale = set(range(len(self._tabs)))

    # -- drawing ----------------------------------------------------------------------------------
    def redraw(self) -> None:
        """Hand the visible tab's curves their current data (views, no copies)."""
        self.redraw_tab(self.tabs.currentIndex())
        self.redrawn.emit(len(self.series))

    def redraw_tab(self, index: int) -> None:
        tab = self._tabs[index]
        self._sync_segments(tab)
        if self.comparing:
            self._draw_overlays(tab)
        else:
            for curve, x, y in tab.bindings:
                curve.setData(x(), y())
            if tab is self._training_tab:
                self._draw_angles()
                self._title_batch_time()
            elif tab is self._experts_tab:
                self._draw_experts()
        self._stale.discard(index)

    def _draw_overlays(self, tab: _Tab) -> None:
        for plot in tab.plots:
            title, y = self._compare_y[plot]
            for overlay, curve in zip(self.overlays, self.overlay_curves.get(plot, [])):
                series = overlay.series or self.series
                curve.setData(series.step.view(), y(series))
            if plot is self.batch_time_plot:
                means = [f"{o.label} {np.mean((o.series or self.series).batch_ms.view()):.1f} ms"
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
                region.setVisible(not self.comparing)
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

    # -- images -----------------------------------------------------------------------------------
    def plot_items(self) -> list[tuple[str, pg.PlotItem]]:
        """Every plot with a name for menus and file names: (tab title: plot title)."""
        items = []
        for index, tab in enumerate(self._tabs):
            for plot in tab.plots:
                title = self._titles[plot]
                name = self.tabs.tabText(index)
                items.append((name if title == name else f"{name}: {title}", plot))
        return items

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
