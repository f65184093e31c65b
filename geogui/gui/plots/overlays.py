"""Runs compared: with two or more overlays, every plot draws one curve per run, each run in its own
colour with its own legend entry, instead of the board's own run's curves. Each run keeps its modes:
a strip per run along the bottom of every plot (`compared_strips`, painted by the plot's one mode-marks
item), and the batch-time title gives each run's mean batch time per mode (`compared_batch_times`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

import numpy as np
import pyqtgraph as pg

from geogui.gui.plotdata.compared_costs import ComparedRun, compared_batch_times
from geogui.gui.plotdata.plot_marks import RunStrip, strip_of
from geogui.gui.plotdata.run_series import RunSeries
from geogui.gui.plotdata.shown_series import RunView
from geogui.gui.plots.legend import LegendRow, add_above_view
from geogui.gui.plots.style import curve_color, faint

if TYPE_CHECKING:
    from geogui.gui.plots.plot import Plot

__all__ = ["CompareSpec", "ComparedRun", "Overlay", "PlotComparison", "compared_batch_times", "compared_strips"]
TITLE_ROW_PX = 30  # pyqtgraph's own title row
TITLE_LINE_PX = 16


@dataclass(frozen=True)
class Overlay:
    """One run drawn in comparison: a label for the legend and its series (None: the board's own
    series, i.e. the live or opened run, read at every redraw so that it keeps growing)."""

    label: str
    series: RunSeries | None = None


@dataclass(frozen=True)
class CompareSpec:
    """What a plot draws of each run when runs are compared."""

    title: str
    y: Callable[[RunSeries], np.ndarray]
    smoothed: bool = False  # the run's smoothed values (`smoothed_of`) over its raw `y`, faint
    # the smoothed values of y (None: the smoothed loss) and the curve's name in readout and exports
    smoothed_of: Callable[[RunSeries], np.ndarray] | None = None
    name: str = "loss"
    # a title that reads the compared runs (a line per run at most); None: `title`
    title_of: Callable[[list[ComparedRun]], str | None] | None = None


def run_colors(count: int) -> list[str]:
    """Each compared run's colour, in the overlays' order: its curves, legend entry, strip and title."""
    return [pg.mkColor(curve_color(index, count)).name() for index in range(count)]


def compared_runs(overlays: list[Overlay], own: RunSeries) -> list[ComparedRun]:
    """The overlays with their series (`own` for the board's run) and colours."""
    colors = run_colors(len(overlays))
    return [ComparedRun(overlay.label, overlay.series or own, color) for overlay, color in zip(overlays, colors)]


def compared_strips(overlays: list[Overlay], own: RunView) -> tuple[RunStrip, ...]:
    """Every compared run's mode strip at today's x positions, in the legend's order."""
    return tuple(strip_of(RunView(run.series, run.label, own.x_kind), run.color)
                 for run in compared_runs(overlays, own.series))


class PlotComparison:
    """One plot's curves for the compared runs, their legend, and its title while comparing."""

    def __init__(self, plot: Plot, spec: CompareSpec) -> None:
        self.plot = plot
        self.spec = spec
        self.curves: list[pg.PlotDataItem] = []  # one per run, in the overlays' order
        self.raw_curves: list[pg.PlotDataItem] = []  # faint, under the smoothed ones (the loss only)
        self.legend: pg.LegendItem | None = None  # made on first use, kept

    def build(self, overlays: list[Overlay]) -> None:
        """One curve (and raw curve) per overlay, replacing those of an earlier comparison."""
        self.clear()
        for overlay, color in zip(overlays, run_colors(len(overlays))):
            if self.spec.smoothed:
                self.raw_curves.append(self.plot.add_curve(pen=pg.mkPen(faint(color)), connect="finite"))
            curve = self.plot.add_curve(pen=pg.mkPen(color, width=2), connect="finite")  # the plot's legend is hidden
            self.curves.append(curve)
            self._legend().addItem(curve, overlay.label)

    def clear(self) -> None:
        for curve in self.curves + self.raw_curves:
            self.plot.remove_curve(curve)
        self.curves, self.raw_curves = [], []
        if self.legend is not None:
            self.legend.clear()

    def _legend(self) -> pg.LegendItem:
        if self.legend is None:  # above the view, like the plot's own: never over the data
            self.legend = LegendRow()
            add_above_view(self.plot, self.legend)
        return self.legend

    def show(self, comparing: bool) -> None:
        """Show either the compared runs or the plot's own curves and legend."""
        plot, mine = self.plot, set(self.curves) | set(self.raw_curves)
        for item in plot.listDataItems():
            if item not in mine:
                item.setVisible(not comparing)
        if plot.legend is not None:
            plot.legend.setVisible(not comparing)
        if self.legend is not None:
            self.legend.setVisible(comparing)
        if not comparing:
            plot.set_title_text(plot.base_title)

    def draw(self, overlays: list[Overlay], own: RunView) -> None:
        """Hand each run's curve its data; `own` is the board's run, drawn for an overlay without series."""
        spec, plot = self.spec, self.plot
        runs = compared_runs(overlays, own.series)
        for index, (compared, curve) in enumerate(zip(runs, self.curves)):
            series = compared.series
            run = RunView(series, compared.label, own.x_kind)
            if spec.smoothed:
                smoothed = spec.smoothed_of(series) if spec.smoothed_of is not None else series.loss_ema.view()
                plot.draw(self.raw_curves[index], run.shown(spec.name, spec.y(series), smoothed), smoothed_curve=curve)
            else:
                plot.draw(curve, run.shown(plot.base_title, spec.y(series)))
        title = spec.title_of(runs) if spec.title_of is not None else None
        self._set_title(title or spec.title)

    def _set_title(self, title: str) -> None:
        """A title of several lines (a run each) gets the room for them; one line keeps pyqtgraph's row."""
        plot = self.plot
        plot.set_title_text(title)
        height = max(TITLE_ROW_PX, 8 + TITLE_LINE_PX * (title.count("<br>") + 1))
        if plot.titleLabel.maximumHeight() != height:
            plot.titleLabel.setMaximumHeight(height)
            plot.layout.setRowFixedHeight(0, height)
