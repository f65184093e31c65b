"""The answer accuracy under the loss: the share of held-out questions answered right at each
evaluation, in percent, one curve per mode segment in the mode's colour (a new mode starts a new
line: its accuracy is not the previous mode's continued). A run without accuracies (data without
question/answer records, or accuracy off) draws no curve and no legend entry: absent, not zero."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg

from geogui.gui.palette import mode_color
from geogui.gui.plotdata.shown_series import RunView
from geogui.gui.plots.overlays import CompareSpec
from geogui.gui.plots.plot import Plot

QWIDGETSIZE_MAX = (1 << 24) - 1  # Qt's "no maximum"
TITLE = "Answer accuracy (held-out questions, greedy)"
LEGEND_NAME = "answers right"
COMPARE = CompareSpec("Answer accuracy: latest per mode (%)", lambda s: 100.0 * s.accuracy_per_row())


class AccuracyCurves:
    def __init__(self, plot: Plot) -> None:
        self.plot = plot
        # Always the whole 0 … 100 %: a share reads against its scale, and an all-zero start must
        # not be blown up to ±20 % by the auto range.
        plot.getViewBox().setLimits(yMin=-3, yMax=103, minYRange=106)
        plot.setYRange(0, 100, padding=0)
        self.curves: list[pg.PlotDataItem] = []
        self._compared: list = []  # the RunSeries being compared (empty when not comparing)
        self._own_drawn = False
        self._show_plot(False)  # until a run has an accuracy

    def _curve(self, index: int, mode: str) -> pg.PlotDataItem:
        while len(self.curves) <= index:
            self.curves.append(self.plot.add_curve(connect="finite", symbol="o", symbolSize=6, symbolPen=None))
        curve = self.curves[index]
        color = mode_color(mode)
        curve.setPen(pg.mkPen(color, width=2))
        curve.setSymbolBrush(color)
        return curve

    def draw(self, run: RunView) -> None:
        series = run.series
        steps, values = series.accuracy_step.view(), 100.0 * series.accuracy.view()
        starts = np.array([segment.start_step for segment in series.segments])
        segment_of = np.maximum(np.searchsorted(starts, steps, side="right") - 1, 0) if len(starts) \
            else np.zeros(len(steps), dtype=np.intp)
        drawn = 0
        for index in dict.fromkeys(segment_of.tolist()):
            mine = segment_of == index
            mode = series.segments[index].mode if series.segments else ""
            curve = self._curve(drawn, mode)
            self.plot.draw(curve, run.shown_at_steps(f"accuracy % ({mode})", steps[mine], values[mine]))
            curve.setVisible(True)
            drawn += 1
        for curve in self.curves[drawn:]:
            curve.setData([], [])
            curve.setVisible(False)
        self._legend(drawn > 0)
        self._own_drawn = drawn > 0
        self._show_plot(drawn > 0)

    def set_compared(self, compared: list) -> None:
        """The RunSeries being compared (none: the board's own run alone). While comparing, the plot
        is shown when any of them has an accuracy, even when the board's own run has none."""
        self._compared = list(compared)
        shown = any(len(series.accuracy) for series in compared) if compared else self._own_drawn
        self._show_plot(shown)

    def _show_plot(self, shown: bool) -> None:
        """The plot takes room only when there is an accuracy to show: on a small screen an empty
        fourth plot would squeeze the other three (a hidden item keeps its row unless it may shrink)."""
        if self.plot.isVisible() == shown:
            return
        self.plot.setVisible(shown)
        self.plot.setMaximumHeight(QWIDGETSIZE_MAX if shown else 0)
        self.plot.setMinimumHeight(0)

    def _legend(self, shown: bool) -> None:
        legend = self.plot.legend
        if legend is None or not self.curves:
            return
        listed = legend.getLabel(self.curves[0]) is not None
        if shown and not listed:
            legend.addItem(self.curves[0], LEGEND_NAME)
        elif not shown and listed:
            legend.removeItem(self.curves[0])
