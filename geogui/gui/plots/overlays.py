"""Runs compared: with two or more overlays, every plot draws one curve per run, each run in its own
colour with its own legend entry, instead of the board's own run's curves."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

import numpy as np
import pyqtgraph as pg

from geogui.gui.plotdata.run_series import RunSeries
from geogui.gui.plotdata.shown_series import RunView
from geogui.gui.plots.style import curve_color, faint

if TYPE_CHECKING:
    from geogui.gui.plots.plot import Plot


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
    smoothed: bool = False  # y is the loss: the run's smoothed loss over its raw loss, faint
    # a title that reads the compared runs (label, series); None: `title`
    title_of: Callable[[list[tuple[str, RunSeries]]], str | None] | None = None


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
        for index, overlay in enumerate(overlays):
            color = curve_color(index, len(overlays))
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
        if self.legend is None:
            self.legend = pg.LegendItem(offset=(-10, 10), labelTextSize="8pt")
            self.legend.setParentItem(self.plot.getViewBox())
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
        runs = [(overlay.label, overlay.series or own.series) for overlay in overlays]
        for index, ((label, series), curve) in enumerate(zip(runs, self.curves)):
            run = RunView(series, label, own.x_kind)
            if spec.smoothed:
                plot.draw(self.raw_curves[index], run.shown("loss", spec.y(series), series.loss_ema.view()),
                          smoothed_curve=curve)
            else:
                plot.draw(curve, run.shown(plot.base_title, spec.y(series)))
        title = spec.title_of(runs) if spec.title_of is not None else None
        plot.set_title_text(title or spec.title)
