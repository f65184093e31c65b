"""The Routing tab: how each MoE layer's router spreads the work over its experts, batch by batch.

- A layer × expert heatmap (right): each expert's utilization, its routed slots over its fair share
  (1 = fair, 0 = dead, grey = a dormant ghost, which cannot be chosen), averaged over the last N
  steps up to the newest that measured routing ("Window (steps)"). A summary of now, live: it does not
  follow the zoom.
- An expert × step heatmap of the layer chosen in "Layer", with the run's mode marks. Its x is the
  training step: with wall time or tokens seen on the board's x axis, cells of equal steps would be
  of unequal widths, so it is hidden then, and the tab says so.
- Under it, sharing its x: each layer's normalised routing entropy (0 … 1), each layer's overflow with
  the saturation threshold dashed, and the utilization spread (see `plotdata.routing_series`).
- A notice lists the experts the run said were dead, until they get tokens again; a note says what
  the tab cannot show (a run logged before routing was measured, geometric steps, which force routing).

Runs compared: the curves show each run's mean entropy and overflow over layers and its utilization
spread; the heatmaps keep showing the board's own run, and their titles say so.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QComboBox, QFrame, QLabel, QScrollArea, QSpinBox, QVBoxLayout

from geogui.gui.plotdata.cell_readout import utilization_readout
from geogui.gui.plotdata.routing_series import mean_entropy, mean_overflow, utilization_spread
from geogui.gui.plotdata.run_series import RunSeries
from geogui.gui.plotdata.shown_series import RunView
from geogui.gui.plots.heatmap import UTILIZATION, MatrixHeatmap, StepHeatmap
from geogui.gui.plots.mode_marks import marks_of, pauses_of
from geogui.gui.plots.overlays import CompareSpec
from geogui.gui.plots.plot import Plot
from geogui.gui.plots.redraw_budget import RedrawBudget
from geogui.gui.plots.style import KEY_COLOR, NONFINITE_COLOR, curve_color
from geogui.gui.plots.tabs import Tab
from geogui.settings.schema import expert_names

WINDOW_STEPS = 100  # the layer × expert heatmap's window at first
QWIDGETSIZE_MAX = (1 << 24) - 1  # Qt's "no maximum"
LEFT_AXIS_PX = 56  # every stacked plot's left axis as wide: a step lies at the same x on all of them
# The layer × expert heatmap, then the stacked plots: the heatmap over steps, entropy, overflow, spread.
ROW_STRETCH = (2, 4, 2, 2, 1)
# Five rows need about 600 px to be read; a small screen (1280 x 720 leaves about 480) scrolls the tab
# instead of crushing its rows.
MATRIX_MIN_PX = 110
STEP_MAP_MIN_PX = 150
CURVES_MIN_PX = 90
TAB_MIN_PX = MATRIX_MIN_PX + STEP_MAP_MIN_PX + 3 * CURVES_MIN_PX + 60
SPREAD_COLOR = "#6a1b9a"
ENTROPY_TITLE = "Routing entropy (1 = the slots spread evenly over the routable experts)"
OVERFLOW_TITLE = "Overflow (fraction of routed slots over capacity)"
SPREAD_TITLE = "Utilization spread (mean over layers of max − min, in fair shares)"
WINDOW_TIP = ("The layer × expert heatmap shows each expert's mean utilization over this many steps, up to the "
              "newest that measured routing (a geometric step, which forces routing, adds nothing)")
STEP_AXIS_NOTE = "The heatmap over steps is drawn on a step x axis only: choose Step to see it."
DEAD_TIP = ("An expert that can be chosen and had no token for run.dead_expert_steps routed steps in a row. "
            "The notice goes once the expert gets tokens again.")
HEATMAP_TIP = ("Utilization: an expert's routed slots over its fair share (its layer's slots / the experts "
               "routable there): 1 = fair, 0 = dead, grey = a dormant ghost (not routable) or no routing")
OVERFLOW_TIP = ("The share of each layer's routed slots that landed on a primary expert beyond its capacity. A "
                "layer's ghosts wake when its smoothed overflow stays above the saturation threshold (dashed) "
                "for ghost_patience steps; the Experts tab's saturation is that smoothed value, mean over layers.")


def layer_names(layers: int) -> tuple[str, ...]:
    """As the run's messages name them: "layer 0", "layer 1", …"""
    return tuple(f"layer {index}" for index in range(layers))


def _step_title(layer: int) -> str:
    return f"Utilization over steps, layer {layer}"


def _no_curve(series: RunSeries) -> np.ndarray:
    return np.full(len(series), np.nan)


def _note_label(color: str) -> QLabel:
    label = QLabel()
    label.setWordWrap(True)
    label.setStyleSheet(f"color: {color}")
    label.setVisible(False)
    return label


class RoutingTab(Tab):
    title = "Routing"

    def __init__(self, budget: RedrawBudget, x_label: str) -> None:
        self.layer_box = QComboBox()
        self.layer_box.setToolTip("The MoE layer the heatmap over steps shows")
        self.layer_box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.window_box = QSpinBox()
        self.window_box.setRange(1, 100_000_000)
        self.window_box.setSingleStep(50)
        self.window_box.setValue(WINDOW_STEPS)
        self.window_box.setToolTip(WINDOW_TIP)
        super().__init__(budget, x_label, [QLabel("Layer"), self.layer_box, QLabel("Window (steps)"), self.window_box])
        self.note = _note_label(KEY_COLOR)
        self.dead_notice = _note_label(NONFINITE_COLOR)
        self.dead_notice.setToolTip(DEAD_TIP)
        column = self.page.layout()
        assert isinstance(column, QVBoxLayout)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        column.replaceWidget(self.widget, scroll)
        scroll.setWidget(self.widget)
        self.widget.setMinimumHeight(TAB_MIN_PX)
        column.insertWidget(1, self.note)
        column.insertWidget(2, self.dead_notice)
        self._names: tuple[str, ...] = ()
        self._own_label = ""  # the board's own run while runs are compared
        self._chosen_layer = 0  # the user's choice of layer holds across runs
        self._build_plots()
        self.layer_box.currentIndexChanged.connect(self._on_layer)
        self.window_box.valueChanged.connect(self._mark_stale)

    def _build_plots(self) -> None:
        # Above the stacked plots, as wide as they are: a linked x lines views up on screen, so a view
        # narrower than the other tabs' (with this heatmap beside it) would show a part of their steps.
        self.utilization_map = MatrixHeatmap("Utilization", UTILIZATION, utilization_readout, row_title="layer",
                                             col_title="expert")
        self.widget.addItem(self.utilization_map, row=0, col=0)
        self.utilization_map.setMinimumHeight(MATRIX_MIN_PX)
        self.rows_above = 1
        self.step_map = self.stack(StepHeatmap(_step_title(0), UTILIZATION, CompareSpec(
            _step_title(0), _no_curve, title_of=lambda _runs: self._compared_title(self.step_map.base_title)),
            y_label="expert", follow_view=False))  # the board redraws it with the tab
        # One colour bar for both heatmaps (one scale): the layer × expert heatmap's. The room goes to the cells.
        self.step_map.heat.bar.setVisible(False)
        self.step_map.heat.bar.setMaximumHeight(0)
        self.step_map.setMinimumHeight(STEP_MAP_MIN_PX)
        self.entropy_plot = self.add_plot(ENTROPY_TITLE, "entropy", CompareSpec(
            "Routing entropy: mean over layers", mean_entropy), legend=True)
        self.entropy_plot.getViewBox().setLimits(yMin=-0.03, yMax=1.03, minYRange=1.06)  # always the whole 0 … 1
        self.overflow_plot = self.add_plot(OVERFLOW_TITLE, "fraction", CompareSpec(
            "Overflow: mean over layers", mean_overflow), legend=True)
        self.overflow_plot.titleLabel.setToolTip(OVERFLOW_TIP)
        # A curve across the run rather than an infinite line: it has a legend entry, and the view fits it.
        dashed = pg.mkPen(KEY_COLOR, width=1, style=Qt.PenStyle.DashLine)
        self.threshold_curve = self.overflow_plot.add_curve(pen=dashed)
        self.threshold: float | None = None  # the run's, once its settings give it
        self._listed_threshold: float | None = None  # the one the legend names
        self.spread_plot = self.add_plot(SPREAD_TITLE, "spread", CompareSpec(
            "Utilization spread (mean over layers of max − min)", utilization_spread))
        self.spread_curve = self.spread_plot.add_curve(pen=pg.mkPen(SPREAD_COLOR, width=1), connect="finite")
        self.entropy_curves: list[pg.PlotDataItem] = []
        self.overflow_curves: list[pg.PlotDataItem] = []
        layout = self.widget.ci.layout
        for row, stretch in enumerate(ROW_STRETCH):
            layout.setRowStretchFactor(row, stretch)
        for plot in self.plots:
            plot.getAxis("left").setWidth(LEFT_AXIS_PX)
        for plot in (self.entropy_plot, self.overflow_plot, self.spread_plot):
            plot.setMinimumHeight(CURVES_MIN_PX)
        for plot in self.plots[:-1]:  # five rows on a small screen: the steps are numbered once, at the bottom
            plot.getAxis("bottom").setStyle(showValues=False)
        for heatmap in (self.step_map, self.utilization_map):
            heatmap.titleLabel.setToolTip(HEATMAP_TIP)

    def follow_mouse(self, on_point: Callable[[Plot, float, float], None], on_leave: Callable[[], None]) -> None:
        # Over the layer × expert heatmap the mouse has left the stacked plots, but its readout stays.
        super().follow_mouse(on_point, lambda: None if self.utilization_map.readout else on_leave())

    def _mark_stale(self, *_args) -> None:
        self.stale = True

    # -- the run's shape --------------------------------------------------------------------------
    def start_run(self, series: RunSeries, names: tuple[str, ...]) -> None:
        self._names = tuple(names)
        self._fit_layers(0)
        self.step_map.store = None
        self.step_map.redraw()
        self.utilization_map.set_matrix(np.empty((0, 0)), (), ())
        for label in (self.note, self.dead_notice):
            label.setVisible(False)

    def set_saturation_threshold(self, threshold: float | None) -> None:
        """The run's model.saturation_threshold, dashed on the overflow plot (None: not known, not drawn)."""
        self.threshold = threshold
        self.stale = True

    def _draw_threshold(self, run: RunView) -> None:
        """The threshold across the run's steps, listed in the legend while it is drawn."""
        x = run.series.x_column(run.x_kind).view()
        drawn = self.threshold is not None and len(x) > 0 and run.series.routing.entropy is not None
        self.threshold_curve.setData([x[0], x[-1]] if drawn else [], [self.threshold] * 2 if drawn else [])
        wanted = self.threshold if drawn else None
        if wanted != self._listed_threshold:
            legend = self.overflow_plot.legend
            if legend.getLabel(self.threshold_curve) is not None:
                legend.removeItem(self.threshold_curve)
            if wanted is not None:  # after the layers' entries
                legend.addItem(self.threshold_curve, f"saturation threshold {wanted:g}")
            self._listed_threshold = wanted

    def _fit_layers(self, layers: int) -> None:
        """A curve per layer on the entropy and overflow plots, and a choice per layer in the Layer box."""
        if layers == len(self.entropy_curves) and layers == self.layer_box.count():
            return
        for plot, curves in ((self.entropy_plot, self.entropy_curves), (self.overflow_plot, self.overflow_curves)):
            for curve in curves:
                plot.remove_curve(curve)
            plot.legend.clear()
            curves[:] = [plot.add_curve(pen=pg.mkPen(curve_color(i, layers), width=1), name=name, connect="finite")
                         for i, name in enumerate(layer_names(layers))]
        self._listed_threshold = None  # the overflow's legend was cleared
        self.layer_box.blockSignals(True)
        self.layer_box.clear()
        self.layer_box.addItems(list(layer_names(layers)))
        self.layer_box.setCurrentIndex(min(self._chosen_layer, layers - 1))
        self.layer_box.blockSignals(False)
        self._title_step_map()

    def _on_layer(self) -> None:
        self._chosen_layer = self.layer
        self._title_step_map()
        self.stale = True

    @property
    def layer(self) -> int:
        """The layer the heatmap over steps shows."""
        return max(self.layer_box.currentIndex(), 0)

    def _title_step_map(self) -> None:
        self.step_map.base_title = _step_title(self.layer)
        if not self.step_map.comparison.curves:  # while runs are compared the comparison titles it
            self.step_map.set_title_text(self.step_map.base_title)

    def expert_names(self, series: RunSeries) -> tuple[str, ...]:
        """The run's names of its E + G experts, else the usual ones (E0 …, then G0 … for the ghosts)."""
        experts = series.routing.experts
        if len(self._names) == experts:
            return self._names
        ghosts = series.ghost_activation.view().shape[1] if series.ghost_activation is not None else 0
        ghosts = min(ghosts, experts)
        return expert_names(experts - ghosts, ghosts)

    # -- drawing ----------------------------------------------------------------------------------
    def draw(self, run: RunView) -> None:
        series = run.series
        routing = series.routing
        self._fit_layers(routing.layers)
        self._draw_heatmaps(run)
        if routing.entropy is not None:
            entropy, overflow = routing.entropy.view(), routing.overflow.view()
            for index, (one, other) in enumerate(zip(self.entropy_curves, self.overflow_curves)):
                self.entropy_plot.draw(one, run.shown(f"layer {index} entropy", entropy[:, index]))
                self.overflow_plot.draw(other, run.shown(f"layer {index} overflow", overflow[:, index]))
        self._draw_threshold(run)
        self.spread_plot.draw(self.spread_curve, run.shown("utilization spread", utilization_spread(series)))
        for heatmap in (self.step_map, self.utilization_map):
            heatmap.titleLabel.setToolTip(HEATMAP_TIP)

    def draw_compared(self, run: RunView) -> None:
        """The heatmaps still show the board's own run, with its own mode marks, and say so."""
        self._own_label = run.label or "the shown run"
        bands, marks = marks_of(run)
        self.step_map.mode_marks.set_marks(bands, marks, pauses_of(run))
        self.step_map.set_title_text(self._compared_title(self.step_map.base_title))
        self._draw_heatmaps(run, compared=True)
        tip = (f"Runs are compared: the heatmaps show {self._own_label} only; the curves compare each run's "
               "mean entropy and overflow over layers and its utilization spread.\n" + HEATMAP_TIP)
        for heatmap in (self.step_map, self.utilization_map):
            heatmap.titleLabel.setToolTip(tip)

    def _compared_title(self, title: str) -> str:
        return f"{title} — {self._own_label or 'the shown run'} only"

    def _draw_heatmaps(self, run: RunView, compared: bool = False) -> None:
        routing = run.series.routing
        names = self.expert_names(run.series)
        on_steps = run.x_kind == "step"
        self._show_step_map(on_steps)
        if routing.utilization is not None:
            experts, layer = routing.experts, min(self.layer, routing.layers - 1)
            self.step_map.set_source(routing.utilization, slice(layer * experts, (layer + 1) * experts), names)
        else:
            self.step_map.store = None
        if on_steps:
            self.step_map.redraw()
        window = self.window_box.value()
        means = routing.window_mean(window)
        if means is None:
            self.utilization_map.set_matrix(np.empty((0, 0)), (), ())
            title = "Utilization"
        else:
            self.utilization_map.set_matrix(means, layer_names(routing.layers), names)
            title = f"Utilization, mean of the last {window:,} steps (to step {routing.utilization.last_step:,})"
        title = self._compared_title(title) if compared else title
        if self.utilization_map.titleLabel.text != title:  # a new title lays the tab out again: only on a change
            self.utilization_map.setTitle(title)
        self._show_notes(run, names, on_steps)

    def _show_step_map(self, shown: bool) -> None:
        """Hidden on a wall-time or tokens x axis (it takes no room then: the curves get it)."""
        plot = self.step_map
        if plot.isVisible() != shown:
            plot.setVisible(shown)
            plot.setMaximumHeight(QWIDGETSIZE_MAX if shown else 0)
            plot.setMinimumHeight(STEP_MAP_MIN_PX if shown else 0)

    def _show_notes(self, run: RunView, names: tuple[str, ...], on_steps: bool) -> None:
        routing = run.series.routing
        notes = [routing.note()]
        if not on_steps and routing.measured:
            notes.append(STEP_AXIS_NOTE)
        text = " ".join(note for note in notes if note)
        self.note.setText(text)
        self.note.setVisible(bool(text))
        dead = routing.dead_now(names)
        self.dead_notice.setText("Dead experts: " + " · ".join(expert.text for expert in dead) if dead else "")
        self.dead_notice.setVisible(bool(dead))
