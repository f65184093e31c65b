"""The runs ticked in the Runs panel, overlaid on the plots once two or more are ticked.

The current run is the plots' own (live) series; the others are read from disk, and read again only
when their metrics.jsonl has changed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from geogui.rundir.runlog import METRICS_FILE, RunLogError
from geogui.gui.plotdata.run_series import RunSeries
from geogui.gui.plotdata.run_source import load_run
from geogui.gui.plots.board import PlotBoard
from geogui.gui.plots.overlays import Overlay
from geogui.gui.widgets.runs_panel import RunsPanel


class ComparedRuns:
    def __init__(self, plots: PlotBoard, runs_panel: RunsPanel, notify: Callable[[str], None]) -> None:
        self.plots = plots
        self.runs_panel = runs_panel
        self._notify = notify
        self._cache: dict[Path, tuple[tuple[int, int], RunSeries]] = {}  # by (mtime, size) of metrics.jsonl

    def update(self, current_run: Path | None) -> None:
        """One overlay per ticked run; the plots change only when the overlays do."""
        overlays = []
        ticked = self.runs_panel.ticked()
        for path in ticked:
            if path == current_run:
                overlays.append(Overlay(path.name, None))
                continue
            series = self._series(path)
            if series is not None:
                overlays.append(Overlay(path.name, series))
        for path in [p for p in self._cache if p not in ticked]:
            del self._cache[path]
        if (overlays if len(overlays) >= 2 else []) != self.plots.overlays:
            self.plots.set_overlays(overlays)

    def forget(self, path: Path) -> None:
        """A run renamed or deleted: its cached series no longer stands for anything on disk."""
        self._cache.pop(path, None)

    def _series(self, path: Path) -> RunSeries | None:
        try:
            stat = (path / METRICS_FILE).stat()
            stamp = (stat.st_mtime_ns, stat.st_size)
        except OSError:
            stamp = (0, 0)
        cached = self._cache.get(path)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        try:
            series = load_run(path).series(self.plots.smoothing.value())
        except RunLogError as exc:
            self._notify(f"Not overlaid: {exc}")
            return None
        self._cache[path] = (stamp, series)
        return series
