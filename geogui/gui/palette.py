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

# One colour per expert or presentation (E0..E3, then the ghosts G0..G3) and per compared run: a
# qualitative set whose every pair stays far apart in CIE Lab (ΔE76 ≥ 49), so that no two curves can
# be taken for each other, all dark enough to read on white. Evenly spaced hues put E2 and E3 in two
# near-identical greens.
SERIES_COLORS: tuple[str, ...] = (
    "#1f77b4",  # blue
    "#e69f00",  # orange
    "#2ca02c",  # green
    "#d62728",  # red
    "#8c564b",  # brown
    "#e377c2",  # pink
    "#44aa99",  # teal
    "#000000",  # black
)


def mode_color(mode: str) -> str:
    return MODE_COLORS.get(mode, "#888888")
