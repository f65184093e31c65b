"""The board's tabs: Training (batch time, loss, rotation angles), Learning rates, Experts and
Throughput (Loss terms and Routing have modules of their own). Each tab holds its plots, stacked and
sharing x, and knows how to draw its run's curves."""

from __future__ import annotations

from typing import Callable, TypeVar

import pyqtgraph as pg
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from geogui.gui.palette import mode_color
from geogui.gui.plotdata.derived import busiest_expert, mean_angle_norm, mean_ghost, nonfinite_heights
from geogui.gui.plotdata.run_series import RunSeries
from geogui.gui.plotdata.shown_series import RunView
from geogui.gui.plots import accuracy_curves
from geogui.gui.plots.accuracy_curves import AccuracyCurves
from geogui.gui.plots.angle_curves import ALL_ANGLES, ANGLE_NORMS, AngleCurves
from geogui.gui.plots.angle_curves import TITLE as ANGLES_TITLE
from geogui.gui.plots.crosshair import MouseFollower
from geogui.gui.plots.legend import ONE_ROW
from geogui.gui.plots.loss_objective import ObjectiveNotesItem, objective_notes, objectives_tooltip
from geogui.gui.plots.mode_marks import mode_label
from geogui.gui.plots.overlays import CompareSpec, compared_batch_times
from geogui.gui.plots.plot import Plot
from geogui.gui.plots.redraw_budget import RedrawBudget, TimedGraphicsLayoutWidget
from geogui.gui.plots.style import NONFINITE_COLOR, curve_color, faint
from geogui.settings.schema import expert_names

PlotT = TypeVar("PlotT", bound=Plot)


class Tab:
    """A page of stacked plots. `stale`: something it draws changed since it was last drawn."""

    title = ""

    def __init__(self, budget: RedrawBudget, x_label: str, controls: list[QWidget] | None = None) -> None:
        self.widget = TimedGraphicsLayoutWidget(budget)
        self.page = QWidget()
        column = QVBoxLayout(self.page)
        column.setContentsMargins(4, 4, 4, 4)
        if controls:
            row = QHBoxLayout()
            for widget in controls:
                if isinstance(widget, QLabel):  # a note wraps rather than widen the window past a small screen
                    widget.setWordWrap(True)
                row.addWidget(widget)
            row.addStretch(1)
            column.addLayout(row)
        column.addWidget(self.widget, 1)
        self.plots: list[Plot] = []
        self.rows_above = 0  # rows of the layout above the stacked plots (a heatmap that shares no x with them)
        self.stale = False
        self._x_label = x_label
        self._mouse: MouseFollower | None = None

    def add_plot(self, title: str, y_label: str, compare: CompareSpec, legend: bool = False,
                 legend_columns: int = ONE_ROW) -> Plot:
        return self.stack(Plot(title, y_label, compare, legend, legend_columns))

    def stack(self, plot: PlotT) -> PlotT:
        """Put a plot made elsewhere (a Plot subclass: a heatmap over steps) under the tab's others."""
        self.widget.addItem(plot, row=self.rows_above + len(self.plots), col=0)
        for previous in self.plots:  # the x axis is named once, under the lowest plot
            previous.setLabel("bottom", "")
        plot.setLabel("bottom", self._x_label)
        self.plots.append(plot)
        return plot

    @property
    def shown_plots(self) -> list[Plot]:
        """The plots on screen (a plot with nothing to show can be hidden: the answer accuracy)."""
        return [plot for plot in self.plots if plot.isVisible()]

    def set_x_label(self, label: str) -> None:
        self._x_label = label
        self.plots[-1].setLabel("bottom", label)

    def follow_mouse(self, on_point: Callable[[Plot, float, float], None], on_leave: Callable[[], None]) -> None:
        self._mouse = MouseFollower(self.widget, self.plots, on_point, on_leave)

    def start_run(self, series: RunSeries, names: tuple[str, ...]) -> None:
        """A new run: size the curves that depend on its shape (most tabs have none)."""

    def draw(self, run: RunView) -> None:
        raise NotImplementedError

    def draw_compared(self, run: RunView) -> None:
        """While runs are compared (each plot draws their curves), what the tab still draws of `run`,
        the board's own: most tabs nothing, a heatmap or a map its cells."""


def _remove(plot: Plot, curves: list[pg.PlotDataItem]) -> None:
    for curve in curves:
        plot.remove_curve(curve)


class TrainingTab(Tab):
    title = "Training"

    def __init__(self, budget: RedrawBudget, x_label: str) -> None:
        self.angle_view = QComboBox()
        self.angle_view.setToolTip("Which rotation angles to draw")
        self.angle_view.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        super().__init__(budget, x_label, [QLabel("Angles"), self.angle_view])
        self.batch_time_plot = self.add_plot("Batch time", "ms", CompareSpec(
            "Batch time", lambda s: s.batch_ms.view(), title_of=compared_batch_times))
        self.batch_time_curve = self.batch_time_plot.add_curve(pen=pg.mkPen("#37474f"))
        self.loss_plot = self.add_plot("Loss", "loss", CompareSpec(
            "Loss (smoothed over raw)", lambda s: s.loss.view(), smoothed=True), legend=True)
        loss = self.loss_plot
        self.loss_raw_curve = loss.add_curve(pen=pg.mkPen(faint("#2196f3")), name="raw", connect="finite")
        self.loss_ema_curve = loss.add_curve(pen=pg.mkPen("#1565c0", width=2), name="smoothed", connect="finite")
        self.eval_curve = loss.add_curve(pen=None, symbol="o", symbolSize=7, symbolBrush="#d81b60", symbolPen=None,
                                         name="eval")
        # In the legend only once there is one (see _draw_nonfinite).
        self.nonfinite_curve = loss.add_curve(pen=None, symbol="x", symbolSize=10, symbolBrush=NONFINITE_COLOR,
                                              symbolPen=pg.mkPen(NONFINITE_COLOR, width=2))
        # Shown and hidden with the mode labels (not while runs are compared), over the curves as they are.
        self.objective_notes = ObjectiveNotesItem([self.loss_raw_curve, self.loss_ema_curve])
        self.objective_notes.setParentItem(loss.mode_marks.labels)
        self.accuracy_plot = self.add_plot(accuracy_curves.TITLE, "% right", accuracy_curves.COMPARE, legend=True)
        self.accuracy = AccuracyCurves(self.accuracy_plot)
        self.angle_plot = self.add_plot(ANGLES_TITLE, "rad", CompareSpec(
            "Rotation angles: mean norm over presentations", mean_angle_norm), legend=True)
        self.angles = AngleCurves(self.angle_plot)

    @property
    def angle_curves(self) -> list[list[pg.PlotDataItem]]:
        """[presentation][angle]"""
        return self.angles.angle_curves

    @property
    def norm_curves(self) -> list[pg.PlotDataItem]:
        return self.angles.norm_curves

    def start_run(self, series: RunSeries, names: tuple[str, ...]) -> None:
        """The angle curves of this run's shape, and a view choice per presentation."""
        self.angles.build(series.presentations, series.rotation_dimensions, names)
        chosen = self.angle_view.currentData()  # keep the user's choice across runs
        self.angle_view.blockSignals(True)
        self.angle_view.clear()
        self.angle_view.addItem("Norm per presentation", ANGLE_NORMS)
        self.angle_view.addItem("All presentations × angles", ALL_ANGLES)
        for p, name in enumerate(self.angles.names):
            self.angle_view.addItem(f"Presentation {name}", p)
        self.angle_view.setCurrentIndex(max(0, self.angle_view.findData(chosen)))
        self.angle_view.blockSignals(False)
        self.show_angle_view()

    def show_angle_view(self) -> None:
        self.angles.show(self.angle_view.currentData())

    def draw_batch_time(self, run: RunView) -> None:
        """The batch-time curve alone: every plot's x follows its plot's, so another tab, drawn while
        this one is hidden, draws it too (else their x range would stop where this tab was last drawn)."""
        self.batch_time_plot.draw(self.batch_time_curve, run.shown("batch time (ms)", run.series.batch_ms.view()))

    def draw(self, run: RunView) -> None:
        series = run.series
        self.draw_batch_time(run)
        self.loss_plot.draw(self.loss_raw_curve, run.shown("loss", series.loss.view(), series.loss_ema.view()),
                            smoothed_curve=self.loss_ema_curve)
        eval_steps = series.eval_step.view()
        self.loss_plot.draw(self.eval_curve, run.shown_at_steps("eval loss", eval_steps, series.eval_loss.view()))
        self._draw_nonfinite(run)
        self.accuracy.draw(run)
        self.objective_notes.set_notes(objective_notes(run))
        self.loss_plot.titleLabel.setToolTip(objectives_tooltip(run))
        self._draw_angles(run)
        self._title_batch_time(series)

    def _draw_nonfinite(self, run: RunView) -> None:
        """A marker at each non-finite loss, at the height of the smoothed loss there (it has no value)."""
        steps = run.series.nonfinite_step.view()
        self.nonfinite_curve.setData(run.x_at_steps(steps), nonfinite_heights(run.series))
        legend = self.loss_plot.legend
        listed = legend.getLabel(self.nonfinite_curve) is not None
        if bool(len(steps)) != listed:
            if listed:
                legend.removeItem(self.nonfinite_curve)
            else:
                legend.addItem(self.nonfinite_curve, "not finite")

    def _draw_angles(self, run: RunView) -> None:
        self.angles.draw(run, self.angle_view.currentData())

    def _title_batch_time(self, series: RunSeries) -> None:
        """Mean batch time of each mode so far, in the batch-time plot's title: the cost of each mode."""
        if not len(series) or not series.segments:
            self.batch_time_plot.set_title_text("Batch time")
            return
        parts = [
            f"<span style='color:{mode_color(mode)}'>{mode_label(mode)} {series.mean_batch_ms(mode):.1f} ms</span>"
            for mode in series.modes_trained()
        ]
        self.batch_time_plot.set_title_text("Batch time — mean per mode: " + " · ".join(parts))


class LearningRatesTab(Tab):
    title = "Learning rates"

    def __init__(self, budget: RedrawBudget, x_label: str) -> None:
        super().__init__(budget, x_label)
        self.lr_plot = self.add_plot("Learning rates", "lr", CompareSpec(
            "Model learning rate", lambda s: s.lr_model.view()), legend=True)
        self.lr_model_curve = self.lr_plot.add_curve(pen=pg.mkPen("#1565c0", width=2), name="model")
        self.lr_rotation_curve = self.lr_plot.add_curve(pen=pg.mkPen("#e0673b", width=2), name="rotation")

    def draw(self, run: RunView) -> None:
        self.lr_plot.draw(self.lr_model_curve, run.shown("model lr", run.series.lr_model.view()))
        self.lr_plot.draw(self.lr_rotation_curve, run.shown("rotation lr", run.series.lr_rotation.view()))


class ExpertsTab(Tab):
    title = "Experts"

    def __init__(self, budget: RedrawBudget, x_label: str) -> None:
        super().__init__(budget, x_label)
        self.expert_plot = self.add_plot("Expert load (fraction of routed slots)", "load", CompareSpec(
            "Expert load: the busiest expert's share", busiest_expert), legend=True)
        self.ghost_plot = self.add_plot("Ghost activation", "0 dormant … 1 awake", CompareSpec(
            "Ghost activation: mean over ghosts", mean_ghost), legend=True)
        self.expert_curves: list[pg.PlotDataItem] = []
        self.ghost_curves: list[pg.PlotDataItem] = []
        self._names: tuple[str, ...] = ()

    def start_run(self, series: RunSeries, names: tuple[str, ...]) -> None:
        self._names = names
        self.rebuild_curves(0, 0)  # sized by the first batch drawn

    def rebuild_curves(self, experts: int, ghosts: int) -> None:
        """A curve per expert (ghosts included) and per ghost, named as the run names them."""
        _remove(self.expert_plot, self.expert_curves)
        _remove(self.ghost_plot, self.ghost_curves)
        for plot in (self.expert_plot, self.ghost_plot):
            plot.legend.clear()
        names = self._names
        if not len(names) == experts >= ghosts:  # a run that does not name its experts: the usual names
            names = expert_names(max(experts - ghosts, 0), ghosts)
        self.expert_curves = [self.expert_plot.add_curve(pen=pg.mkPen(curve_color(i, experts), width=1),
                                                         name=names[i]) for i in range(experts)]
        self.ghost_curves = [
            self.ghost_plot.add_curve(pen=pg.mkPen(curve_color(experts - ghosts + g, experts), width=1),
                                      name=names[len(names) - ghosts + g]) for g in range(ghosts)]

    def draw(self, run: RunView) -> None:
        series = run.series
        if series.expert_load is None:
            return
        loads, ghosts = series.expert_load.view(), series.ghost_activation.view()
        if len(self.expert_curves) != loads.shape[1] or len(self.ghost_curves) != ghosts.shape[1]:
            self.rebuild_curves(loads.shape[1], ghosts.shape[1])
        for i, curve in enumerate(self.expert_curves):
            self.expert_plot.draw(curve, run.shown(f"{curve.name()} load", loads[:, i]))
        for g, curve in enumerate(self.ghost_curves):
            self.ghost_plot.draw(curve, run.shown(f"{curve.name()} activation", ghosts[:, g]))


class ThroughputTab(Tab):
    title = "Throughput"

    def __init__(self, budget: RedrawBudget, x_label: str) -> None:
        super().__init__(budget, x_label)
        self.tokens_plot = self.add_plot("Tokens per second", "tokens/s", CompareSpec(
            "Tokens per second", lambda s: s.tokens_per_s.view()))
        self.tokens_curve = self.tokens_plot.add_curve(pen=pg.mkPen("#2e7d32"))
        self.memory_plot = self.add_plot("Memory", "MiB", CompareSpec("Memory", lambda s: s.memory_mib.view()))
        self.memory_curve = self.memory_plot.add_curve(pen=pg.mkPen("#6a1b9a"))

    def draw(self, run: RunView) -> None:
        self.tokens_plot.draw(self.tokens_curve, run.shown("tokens/s", run.series.tokens_per_s.view()))
        self.memory_plot.draw(self.memory_curve, run.shown("memory (MiB)", run.series.memory_mib.view()))
