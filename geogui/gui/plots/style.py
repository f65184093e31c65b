"""How the plots look: colours, pens and pyqtgraph's global options, in one place."""

from __future__ import annotations

import pyqtgraph as pg

from geogui.gui.palette import RAW_ALPHA, SERIES_COLORS

TEXT_COLOR = "#303030"
GRID_COLOR = "#e4e4e4"
NONFINITE_COLOR = "#c62828"
CROSSHAIR_COLOR = "#9e9e9e"
KEY_COLOR = "#555555"  # legend keys that explain a line style, not a colour

pg.setConfigOptions(background="w", foreground=TEXT_COLOR, antialias=False)


def curve_color(index: int, count: int):
    """The colour of curve `index` of `count` (experts, presentations, compared runs)."""
    if count <= len(SERIES_COLORS):
        return pg.mkColor(SERIES_COLORS[index])
    # More curves than distinct colours: evenly spaced hues, darkened a little so that yellow and
    # cyan stay readable on white.
    return pg.intColor(index, hues=count, maxValue=215)


def faint(color) -> pg.QtGui.QColor:
    color = pg.mkColor(color)
    color.setAlpha(RAW_ALPHA)
    return color
