"""The rotation-angle plot's curves and its three views, each with a legend that lists exactly what it
draws and curves named as the legend names them (the readout uses those names):

- norm per presentation (the default): one curve per presentation, the norm of its angles, in the
  presentation's colour;
- all presentations × angles: every angle, the presentation's colour and a line style per angle index
  (solid, dashed, dotted, dash-dotted), with a key for the styles;
- one presentation: its angles, each in a colour of its own.
"""

from __future__ import annotations

from typing import Sequence

import pyqtgraph as pg
from PySide6.QtCore import Qt

from geogui.gui.plotdata.shown_series import RunView
from geogui.gui.plots.legend import SAMPLE_PX, key_sample
from geogui.gui.plots.plot import Plot
from geogui.gui.plots.style import KEY_COLOR, curve_color

ALL_ANGLES = "all"
ANGLE_NORMS = "norm"
ANGLE_STYLES = (Qt.PenStyle.SolidLine, Qt.PenStyle.DashLine, Qt.PenStyle.DotLine, Qt.PenStyle.DashDotLine)
ANGLE_PEN_WIDTH = 1.5  # dashes and dots of a hairline are hard to tell apart
TITLE = "Rotation angles"


def angle_style(index: int) -> Qt.PenStyle:
    return ANGLE_STYLES[index % len(ANGLE_STYLES)]


def view_title(view, names: Sequence[str]) -> str:
    if view == ANGLE_NORMS:
        return f"{TITLE}: norm of each presentation's angles"
    if view == ALL_ANGLES:
        return f"{TITLE}: every presentation's angles"
    return f"{TITLE} of presentation {names[view]}"


class AngleCurves:
    """A curve per (presentation, angle) and one per presentation's norm, on `plot`; `show(view)`
    picks which are drawn, styles them and writes the legend and title for that view."""

    def __init__(self, plot: Plot) -> None:
        self.plot = plot
        self.angle_curves: list[list[pg.PlotDataItem]] = []  # [presentation][angle]
        self.norm_curves: list[pg.PlotDataItem] = []
        self.names: tuple[str, ...] = ()

    def build(self, presentations: int, dimensions: int, names: Sequence[str]) -> None:
        """The curves of a run of this shape, replacing the last run's."""
        for curve in [c for curves in self.angle_curves for c in curves] + self.norm_curves:
            self.plot.remove_curve(curve)
        self.names = tuple(names[p] if p < len(names) else str(p + 1) for p in range(presentations))
        self.angle_curves = [[self.plot.add_curve(connect="finite") for _ in range(dimensions)]
                             for _ in range(presentations)]
        self.norm_curves = [self.plot.add_curve(connect="finite") for _ in range(presentations)]

    def color(self, p: int):
        return curve_color(p, len(self.names))

    def show(self, view) -> None:
        for p, curves in enumerate(self.angle_curves):
            for i, curve in enumerate(curves):
                curve.setVisible(view == ALL_ANGLES or view == p)
                if view == ALL_ANGLES:
                    curve.setPen(pg.mkPen(self.color(p), width=ANGLE_PEN_WIDTH, style=angle_style(i)))
                elif view == p:
                    curve.setPen(pg.mkPen(curve_color(i, len(curves)), width=ANGLE_PEN_WIDTH))
            self.norm_curves[p].setPen(pg.mkPen(self.color(p), width=ANGLE_PEN_WIDTH))
            self.norm_curves[p].setVisible(view == ANGLE_NORMS)
        self._write_legend(view)
        if self.names:
            self.plot.base_title = view_title(view, self.names)
            self.plot.set_title_text(self.plot.base_title)

    def _write_legend(self, view) -> None:
        legend = self.plot.legend
        legend.clear()
        dimensions = len(self.angle_curves[0]) if self.angle_curves else 0
        if view == ANGLE_NORMS:
            for p, curve in enumerate(self.norm_curves):
                legend.addItem(curve, self.names[p])
        elif view == ALL_ANGLES:
            for p, curves in enumerate(self.angle_curves):
                legend.addItem(key_sample(pg.mkPen(self.color(p), width=2), SAMPLE_PX), self.names[p])
            for i in range(dimensions):
                legend.addItem(key_sample(pg.mkPen(KEY_COLOR, width=ANGLE_PEN_WIDTH, style=angle_style(i))), f"d{i}")
        elif isinstance(view, int) and view < len(self.angle_curves):
            for i, curve in enumerate(self.angle_curves[view]):
                legend.addItem(curve, f"d{i}")

    def draw(self, run: RunView, view) -> None:
        series = run.series
        if not len(series) or not series.presentations:
            return
        if view == ANGLE_NORMS:
            norms = series.angle_norms()
            for p, curve in enumerate(self.norm_curves):
                self.plot.draw(curve, run.shown(f"{self.names[p]} norm", norms[:, p]))
            return
        angles = series.angles.view()
        r = series.rotation_dimensions
        for p, curves in enumerate(self.angle_curves):
            if view == ALL_ANGLES or view == p:
                for i, curve in enumerate(curves):
                    self.plot.draw(curve, run.shown(f"{self.names[p]} d{i}", angles[:, p * r + i]))
