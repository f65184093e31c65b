"""Colours shared by the plots and the toolbar, so a mode looks the same everywhere it appears."""

from __future__ import annotations

from geogui.settings import Mode

# One hue per mode: the shaded plot segments and the toolbar's mode buttons use the same colour.
MODE_COLORS: dict[str, str] = {
    Mode.STANDARD.value: "#5c8dd6",
    Mode.GEOMETRIC.value: "#e0673b",
    Mode.GEOMETRIC_FAST.value: "#3fae6a",
}
SEGMENT_ALPHA = 38  # of 255: a tint behind the curves, not a fill that hides them
RAW_ALPHA = 70  # the unsmoothed loss is drawn faint under its EMA


def mode_color(mode: str) -> str:
    return MODE_COLORS.get(mode, "#888888")
