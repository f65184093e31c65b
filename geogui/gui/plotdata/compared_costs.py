"""What each mode costs in each compared run: the batch-time plot's title while runs are compared. No Qt.

The overlay exists to compare the cost of a mode across runs, so a run's mean over all its modes (a
mix that depends on how long it spent in each) is not shown: each run gets its mean batch time per
mode, in the order it trained them, each mode in its colour, each run on its own line.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass

from geogui.gui.palette import mode_color
from geogui.gui.plotdata.plot_marks import mode_label
from geogui.gui.plotdata.run_series import RunSeries

TITLE = "Batch time — mean per mode"


@dataclass(frozen=True)
class ComparedRun:
    """One run drawn in comparison: its legend label, its series and its curve's colour ("#rrggbb")."""

    label: str
    series: RunSeries
    color: str


def mean_batch_ms_per_mode(series: RunSeries) -> list[tuple[str, float]]:
    """(mode, mean batch ms) for every mode the run trained batches in, in the order it first did."""
    means = [(mode, series.mean_batch_ms(mode)) for mode in series.modes_trained()]
    return [(mode, ms) for mode, ms in means if math.isfinite(ms)]


def run_costs_html(run: ComparedRun) -> str:
    """"■ run-a: Standard 10.1 ms · Geometric fast 12.0 ms", the square in the run's colour and each
    mode in its own."""
    parts = [f"<span style='color:{mode_color(mode)}'>{mode_label(mode)} {ms:.1f} ms</span>"
             for mode, ms in mean_batch_ms_per_mode(run.series)]
    return f"<span style='color:{run.color}'>■</span> {html.escape(run.label)}: " + " · ".join(parts)


def compared_batch_times(runs: list[ComparedRun]) -> str | None:
    """The batch-time plot's title: a line per run that has batches (None: none has)."""
    lines = [run_costs_html(run) for run in runs if mean_batch_ms_per_mode(run.series)]
    if not lines:
        return None
    return f"{TITLE}: " + "<br>".join(lines)
