"""The window's exports: File → Export Run… (CSV, JSONL, summaries), Export Plot / All Plots (PNG,
SVG) and Export to TensorBoard…, each asking where in the folder last used for its kind of file.
A failure is a warning in the window, never a crash; what the run logged is untouched."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from PySide6.QtGui import QAction
from PySide6.QtWidgets import QMenu, QWidget

from geogui.gui.dialog_folders import DialogKind, ask_folder, ask_save_path
from geogui.gui.plots.board import PlotBoard
from geogui.gui.plots.image_export import ExportTargetError, plot_file_stem
from geogui.gui.widgets.runs_panel import RunsPanel
from geogui.gui.widgets.status_bar import RunStatusBar
from geogui.rundir.export.tables import ExportError, export_run
from geogui.rundir.export.tensorboard import INSTALL_HINT as TENSORBOARD_INSTALL_HINT
from geogui.rundir.export.tensorboard import tensorboard_available
from geogui.rundir.runlog import RunLogError

RUN_EXPORT_FILTERS = {
    "CSV, one row per batch (*.csv)": ".csv",
    "JSONL, every record (*.jsonl)": ".jsonl",
    "Summary, Markdown (*.md)": ".md",
    "Summary, JSON (*.json)": ".json",
}
PLOT_EXPORT_FILTERS = {"PNG image (*.png)": ".png", "SVG drawing (*.svg)": ".svg"}


class RunExports:
    def __init__(self, window: QWidget, plots: PlotBoard, runs_panel: RunsPanel, status: RunStatusBar,
                 current_run: Callable[[], Path | None], warn: Callable[[str, str], None]) -> None:
        self._window, self._plots, self._runs_panel, self._status = window, plots, runs_panel, status
        self._current_run, self._warn = current_run, warn

    def add_menu_entries(self, file_menu: QMenu) -> None:
        file_menu.addAction("Export Run…", self.ask_export_run).setMenuRole(QAction.MenuRole.NoRole)
        self.export_plot_menu = file_menu.addMenu("Export Plot")
        for name, plot in self._plots.plot_items():
            action = self.export_plot_menu.addAction(
                f"{name}…", lambda plot=plot, name=name: self.ask_export_plots(plot, name))
            action.setMenuRole(QAction.MenuRole.NoRole)
        file_menu.addAction("Export All Plots…", self.ask_export_plots).setMenuRole(QAction.MenuRole.NoRole)
        # Without the optional extra the item stays, and says how to get it.
        tensorboard_label = "Export to TensorBoard…" if tensorboard_available() else (
            'Export to TensorBoard… (needs: pip install "geogui[tensorboard]")')
        self.export_tensorboard_action = file_menu.addAction(tensorboard_label, self.ask_export_tensorboard)
        self.export_tensorboard_action.setMenuRole(QAction.MenuRole.NoRole)

    def export_source(self) -> Path | None:
        """The run File → Export Run… writes: the one selected in the Runs panel, else the current run."""
        return self._runs_panel.selected_path() or self._current_run()

    def ask_export_run(self) -> None:
        run = self.export_source()
        if run is None:
            self._warn("Nothing to export", "Open a run, or select one in the Runs panel, first.")
            return
        out = ask_save_path(self._window, f"Export run {run.name}", run.name, RUN_EXPORT_FILTERS, DialogKind.RUN_EXPORT)
        if out is not None:
            self.export_run_to(out, run)

    def export_run_to(self, out: Path, run: Path | None = None) -> bool:
        """CSV / JSONL / summary (.md, .json) by the suffix of `out`; a failure is a message, not a crash."""
        run = run or self.export_source()
        if run is None:
            self._warn("Nothing to export", "Open a run, or select one in the Runs panel, first.")
            return False
        try:
            report = export_run(run, Path(out))
        except (ExportError, RunLogError, OSError) as exc:
            self._warn("Export failed", " ".join(str(exc).split()))
            return False
        self._status.show_notice(f"Exported {run.name}: {report}")
        return True

    def ask_export_plots(self, plot=None, name: str | None = None) -> None:
        run = self._current_run().name if self._current_run() is not None else "geogui"
        title = f"Export plot {name}" if plot is not None else "Export all plots (one file per tab)"
        # One plot: <run>-<plot>.png; all plots: <run>.png, written as <run>-<tab>.png per tab.
        stem = plot_file_stem(run, name or "") if plot is not None else run
        out = ask_save_path(self._window, title, stem, PLOT_EXPORT_FILTERS, DialogKind.PLOT_IMAGE)
        if out is not None:
            self.export_plots_to(out, plot)

    def ask_export_tensorboard(self) -> None:
        run = self.export_source()
        if not tensorboard_available():
            self._warn("TensorBoard is not installed", TENSORBOARD_INSTALL_HINT)
            return
        if run is None:
            self._warn("Nothing to export", "Open a run, or select one in the Runs panel, first.")
            return
        logdir = ask_folder(self._window, f"TensorBoard log directory for {run.name}", DialogKind.TENSORBOARD)
        if logdir is not None:
            self.export_tensorboard_to(logdir, run)

    def export_tensorboard_to(self, logdir: Path, run: Path | None = None) -> bool:
        """Write the run as event files in LOGDIR/<run name>/ (`tensorboard --logdir LOGDIR` shows it)."""
        run = run or self.export_source()
        try:
            report = export_run(run, Path(logdir), "tensorboard")
        except (ExportError, RunLogError, OSError) as exc:
            self._warn("Export failed", " ".join(str(exc).split()))
            return False
        self._status.show_notice(f"Exported {run.name} for TensorBoard: {report}")
        return True

    def export_plots_to(self, out: Path, plot=None) -> list[Path]:
        """One plot, or every tab as its own file (`<name>-<tab>.png`), as PNG or SVG by the suffix."""
        try:
            written = self._plots.export_image(Path(out), plot)
        except ExportTargetError as exc:
            self._warn("Export failed", str(exc))
            return []
        self._status.show_notice("Exported " + ", ".join(path.name for path in written))
        return written
