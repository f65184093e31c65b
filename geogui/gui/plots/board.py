"""Live pyqtgraph views of one run (or several, compared), fed from `RunSeries` and redrawn by a timer.

Records only append to the series and mark the tabs stale; the timer (20 Hz, under a redraw budget)
redraws the visible tab, and only when something new arrived. The status bar's step follows the
redraws (`batch_plotted`), not the arrivals, so it never runs ahead of the plots. Every plot shares one x axis (step,
relative wall time or tokens seen) and each curve gets only what its pixels can show (see `plot`).
"""

from __future__ import annotations

import time

from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QTabWidget, QVBoxLayout, QWidget

from geogui.engine.metrics import BatchRecord, EvalRecord, ModeChange, RunEvent
from geogui.gui.plotdata.run_series import RunSeries
from geogui.gui.plotdata.run_source import RunShape
from geogui.gui.plotdata.shown_series import X_AXES, RunView
from geogui.gui.plots.controls import SmoothingSlider
from geogui.gui.plots.count_axis import COUNTED_X
from geogui.gui.plots.crosshair import Readout
from geogui.gui.plots.board_exports import BoardExports
from geogui.gui.plots.image_export import ExportTargetError
from geogui.gui.plots.loss_terms import LossTermsTab
from geogui.gui.plots.mode_marks import marks_of, pauses_of
from geogui.gui.plots.mode_marks import mode_label as _mode_label
from geogui.gui.plots.overlays import Overlay, compared_strips
from geogui.gui.plots.plot import Plot
from geogui.gui.plots.plotted_batch import PlottedBatch
from geogui.gui.plots.redraw_budget import RedrawBudget
from geogui.gui.plots.rotation_tab import RotationTab
from geogui.gui.plots.routing import RoutingTab
from geogui.gui.plots.start_hint import StartHint
from geogui.gui.plots.step_heatmap import StepHeatmap
from geogui.gui.plots.tabs import ANGLE_NORMS, ExpertsTab, LearningRatesTab, Tab, ThroughputTab, TrainingTab

# Also importable from here, where they used to live (the Runs panel reads mode labels from here).
__all__ = ["ANGLE_NORMS", "ExportTargetError", "Overlay", "PlotBoard", "REFRESH_HZ", "X_AXES", "_mode_label"]

REFRESH_HZ = 20


class PlotBoard(QWidget, BoardExports):
    """All plots of a run in tabs: Training (batch time, loss, rotation angles), Loss terms, Learning
    rates, Experts, Routing (per layer), Throughput and Rotation (maps of one step)."""

    redrawn = Signal(int)  # batches plotted after a redraw
    batch_plotted = Signal(object)  # BatchRecord: the newest batch, once a redraw has drawn it
    step_hovered = Signal(object)  # the step (float) under the mouse on any plot; None once it left them

    def __init__(self, parent: QWidget | None = None, refresh_hz: float = REFRESH_HZ) -> None:
        super().__init__(parent)
        self.series = RunSeries(presentations=0, rotation_dimensions=0)
        self._run_label = ""
        self.budget = RedrawBudget()  # drawing may take at most a few % of wall time from training
        self.plotted_batch = PlottedBatch()
        # Comparison: with two or more overlays, every plot draws one curve per run instead of its own.
        self.overlays: list[Overlay] = []
        self._zoom_redraw_pending = False
        self._build_controls()
        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        x_label = X_AXES[self.x_kind]
        self.training = TrainingTab(self.budget, x_label)
        self.loss_terms = LossTermsTab(self.budget, x_label)
        self.learning_rates = LearningRatesTab(self.budget, x_label)
        self.experts = ExpertsTab(self.budget, x_label)
        self.routing = RoutingTab(self.budget, x_label)
        self.throughput = ThroughputTab(self.budget, x_label)
        self.rotation = RotationTab(self.budget, x_label)
        self.plot_tabs: list[Tab] = [self.training, self.loss_terms, self.learning_rates, self.experts,
                                     self.routing, self.throughput, self.rotation]
        self.step_hovered.connect(self.rotation.show_step)
        self.batch_time_plot = self.training.batch_time_plot  # every plot's x follows this one
        for tab in self.plot_tabs:
            self.tabs.addTab(tab.page, tab.title)
            tab.follow_mouse(self.show_crosshair, lambda tab=tab: self.hide_crosshair(tab))
            for plot in tab.plots:
                self._wire(tab, plot)
        self.training.angle_view.currentIndexChanged.connect(self._on_angle_view)
        self.routing.utilization_map.hovered.connect(self.readout.show_text)  # a heatmap of cells, not curves
        self.tabs.currentChanged.connect(self._on_tab_changed)
        self._lay_out()
        self.has_run = False  # False until a run is shown, and again once it is deleted
        self.start_hint = StartHint(self, over=self.tabs)
        self.timer = QTimer(self)
        self.timer.setInterval(round(1000 / refresh_hz))
        self.timer.timeout.connect(self._on_tick)
        self.timer.start()

    # -- building ---------------------------------------------------------------------------------
    def _build_controls(self) -> None:
        self.smoothing = SmoothingSlider()
        self.smoothing.setValue(self.series.smoothing)
        self.smoothing.valueChanged.connect(self._on_smoothing)
        self.x_axis = QComboBox()
        for key, label in X_AXES.items():
            self.x_axis.addItem(label[0].upper() + label[1:], key)
        self.x_axis.setToolTip("What every plot's x axis counts")
        self.x_axis.currentIndexChanged.connect(self._on_x_axis)
        self.readout = Readout()

    def _wire(self, tab: Tab, plot: Plot) -> None:
        if plot is not self.batch_time_plot:
            plot.link_x_to(self.batch_time_plot)
        plot.needs_redraw.connect(lambda tab=tab: self._on_view_changed(tab))
        plot.export_data_requested.connect(self.ask_export_data)
        plot.export_image_requested.connect(self.ask_export_image)
        # pyqtgraph's scene adds its own "Export..." to every right-click menu: a second image export
        # beside the plot's, whose SVG holds the whole tab. The plot's own entries are the ones to use.
        plot.scene().contextMenu = []

    def _lay_out(self) -> None:
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

    @property
    def all_plots(self) -> list[Plot]:
        return [plot for tab in self.plot_tabs for plot in tab.plots]

    def tab_of(self, plot: Plot) -> Tab:
        return next(tab for tab in self.plot_tabs if plot in tab.plots)

    @property
    def run_label(self) -> str:
        """The name of the board's own run, for the readout and exported data."""
        return self._run_label

    @run_label.setter
    def run_label(self, label: str) -> None:
        if label != self._run_label:
            self._run_label = label
            self._mark_stale()  # the curves' readouts carry the name: draw them again under the new one
            self.readout.clear(self.all_plots)

    # -- feeding ----------------------------------------------------------------------------------
    def start_run(self, presentations: int, rotation_dimensions: int, expert_names: tuple[str, ...] = (),
                  max_rotation: float | None = None) -> None:
        """Clear every plot and size the per-presentation curves for a new run (whose angles are at
        most `max_rotation`, when known)."""
        self.series = RunSeries(presentations, rotation_dimensions, smoothing=self.smoothing.value())
        self.plotted_batch.clear()
        for plot in self.all_plots:
            plot.mode_marks.clear()
        self.readout.clear(self.all_plots)  # it read the run that was shown before
        for tab in self.plot_tabs:
            tab.start_run(self.series, expert_names)
        self.rotation.set_max_rotation(max_rotation)
        self.has_run = True
        self._show_comparison()
        self._redraw_everything()

    def clear_run(self) -> None:
        """Show no run (the one shown was deleted): empty plots, and the start hint again."""
        self.start_run(0, 0)
        self.has_run = False
        self._show_comparison()

    def append(self, records: list[BatchRecord | EvalRecord]) -> None:
        self.series.append(records)
        self.plotted_batch.arrived(records)
        self._mark_stale()

    def load_columns(self, columns) -> None:
        """A run (or what was appended to it) read as columns from disk: no object per batch."""
        self.series.extend_columns(columns, self.add_mode_change)
        self.plotted_batch.arrived_columns(columns, self.series.presentations)
        self._mark_stale()

    def add_mode_change(self, change: ModeChange) -> None:
        """Mark the change on every plot (a labelled dashed line); a new mode also starts a tinted segment."""
        self.series.add_mode_change(change)
        self._mark_stale()

    def start_shaped(self, shape: RunShape) -> None:
        """`start_run` for a run of `shape`, whose saturation threshold the Routing tab draws (until the next shape)."""
        self.routing.set_saturation_threshold(shape.saturation_threshold)
        self.start_run(shape.presentations, shape.rotation_dimensions, shape.expert_names, shape.max_rotation)

    def add_event(self, event: RunEvent) -> None:
        """A run's event as it happens: a pause is marked on every plot, a dead expert noted in Routing."""
        self.series.add_event(event)
        self._mark_stale()

    def _mark_stale(self) -> None:
        for tab in self.plot_tabs:
            tab.stale = True

    def _redraw_everything(self) -> None:
        """After the plotted series changed wholesale: redraw now and let every view re-fit its data."""
        self._mark_stale()
        for plot in self.all_plots:
            plot.refit()
        self.redraw()

    def run_view(self) -> RunView:
        """The board's own run as its tabs draw it."""
        return RunView(self.series, self.run_label, self.x_kind)

    # -- comparing --------------------------------------------------------------------------------
    @property
    def comparing(self) -> bool:
        return len(self.overlays) >= 2

    def set_overlays(self, overlays: list[Overlay]) -> None:
        """Compare runs: with two or more, every plot shows one curve per run, each run in its own colour
        with a legend entry; with fewer, the plots go back to the board's own run in full detail."""
        self.overlays = list(overlays) if len(overlays) >= 2 else []
        self.readout.clear(self.all_plots)  # it may name a run no longer drawn
        for overlay in self.overlays:
            if overlay.series is not None:
                overlay.series.set_smoothing(self.smoothing.value())
        for plot in self.all_plots:
            plot.comparison.build(self.overlays)
        self._show_comparison()
        self._redraw_everything()

    def _show_comparison(self) -> None:
        """Show either the runs being compared or the board's own run's curves, legends and segments."""
        comparing = self.comparing
        self.start_hint.set_wanted(not self.has_run and not comparing)
        for plot in self.all_plots:
            plot.comparison.show(comparing)
        if not comparing:
            self.training.show_angle_view()

    # -- x axis -----------------------------------------------------------------------------------
    @property
    def x_kind(self) -> str:
        return self.x_axis.currentData() or "step"

    def _on_x_axis(self) -> None:
        for tab in self.plot_tabs:
            tab.set_x_label(X_AXES[self.x_kind])
        for plot in self.all_plots:
            plot.set_x_counts(self.x_kind in COUNTED_X)
        self._redraw_everything()

    # -- drawing ----------------------------------------------------------------------------------
    def redraw(self) -> None:
        """Hand the visible tab's curves their current data, reduced to the view's pixels."""
        if self.current_tab() is not None:
            self.redraw_tab(self.tabs.currentIndex())
        self.plotted_batch.drawn(self.batch_plotted.emit)
        self.redrawn.emit(len(self.series))

    def redraw_tab(self, index: int) -> None:
        """Draw one tab, with the mode segments, changes and pauses at today's x positions (runs compared:
        a mode strip per run), the other tabs catching up when they are shown."""
        tab, run = self.plot_tabs[index], self.run_view()
        x_master = self.batch_time_plot
        if tab is not self.training and x_master.getViewBox().autoRangeEnabled()[0]:  # the x range grows with it
            if self.comparing:
                x_master.comparison.draw(self.overlays, run)
            else:
                self.training.draw_batch_time(run)
            x_master.getViewBox().updateAutoRange()  # pyqtgraph does it at the next paint: never, while hidden
        if tab is self.training:  # the accuracy plot is there when a run drawn has an accuracy
            self.training.accuracy.set_compared([overlay.series or self.series for overlay in self.overlays])
        if self.comparing:
            strips = compared_strips(self.overlays, run)
            for plot in tab.plots:
                plot.mode_marks.set_marks(strips=strips)
                plot.comparison.draw(self.overlays, run)
            tab.draw_compared(run)
        else:
            bands, marks = marks_of(run)
            pauses = pauses_of(run)
            for plot in tab.plots:
                plot.mode_marks.set_marks(bands, marks, pauses)
            tab.draw(run)
        for plot in tab.plots:
            plot.fit_view()
        tab.stale = False

    def _on_view_changed(self, tab: Tab) -> None:
        # A zoom, pan or resize: the view's curves are reduced afresh, at once when its tab is shown
        # (once per burst of events), else when the tab is next shown.
        tab.stale = True
        if tab is self.current_tab() and not self._zoom_redraw_pending:
            self._zoom_redraw_pending = True
            QTimer.singleShot(0, self._redraw_after_view_change)

    def current_tab(self) -> Tab | None:
        """The plot tab shown; None while a page without plots (Samples) is."""
        index = self.tabs.currentIndex()
        return self.plot_tabs[index] if 0 <= index < len(self.plot_tabs) else None

    def add_page(self, page: QWidget, title: str) -> None:
        """A page without plots after the plot tabs (they keep their indices)."""
        self.tabs.addTab(page, title)

    def _redraw_after_view_change(self) -> None:
        self._zoom_redraw_pending = False
        if (tab := self.current_tab()) is not None and tab.stale:
            self._timed_redraw()

    def _on_tick(self) -> None:
        tab = self.current_tab()
        if tab is None:  # no plot shown: the status bar's step still follows the run
            self.plotted_batch.drawn(self.batch_plotted.emit)
        elif tab.stale and self.budget.ready():
            self._timed_redraw()

    def _on_tab_changed(self, index: int) -> None:
        if index < len(self.plot_tabs) and self.plot_tabs[index].stale:
            self._timed_redraw()

    def _timed_redraw(self) -> None:
        start = time.perf_counter()
        self.redraw()
        self.budget.spend(time.perf_counter() - start)  # the paint that follows is charged by the widget

    def _on_angle_view(self) -> None:
        self.training.show_angle_view()
        self.training.stale = True

    def _on_smoothing(self, value: float) -> None:
        self.series.set_smoothing(value)
        for overlay in self.overlays:
            if overlay.series is not None:
                overlay.series.set_smoothing(value)
        self.training.stale = self.loss_terms.stale = True

    # -- crosshair --------------------------------------------------------------------------------
    def show_crosshair(self, plot: Plot, x: float, y: float) -> str:
        """A vertical line at x on every plot of the tab (they share x), and the readout of the curve
        of `plot` nearest to (x, y) in view coordinates (a heatmap's: of its cell there). Returns the readout."""
        self.step_hovered.emit(self.series.step_at_x(self.x_kind, x))
        if isinstance(plot, StepHeatmap):
            return self.readout.show_text_at(self.tab_of(plot).plots, x, plot.readout_at(x, y))
        return self.readout.show_at(self.tab_of(plot).plots, plot, x, y, X_AXES[self.x_kind])

    def hide_crosshair(self, tab: Tab) -> None:
        """The mouse left the tab's plots: no line, and no readout of a point no longer pointed at."""
        self.readout.clear(tab.plots)
        self.step_hovered.emit(None)
