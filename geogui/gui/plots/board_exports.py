"""The board's exports: the data a plot shows (CSV or JSON) and images of one plot or of every tab
(PNG or SVG), with their dialogs. A mixin of `PlotBoard`, which has the tabs and the redraws."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QMessageBox

from geogui.gui.dialog_folders import DialogKind, ask_save_path
from geogui.gui.plotdata.export_table import PlotDataError, write_plot_data
from geogui.gui.plotdata.shown_series import X_AXES, ShownSeries
from geogui.gui.plots.image_export import ExportTargetError, image_suffix, plot_file_stem, slug, write_image
from geogui.gui.plots.plot import Plot

DATA_FILTERS = {"CSV, one row per point (*.csv)": ".csv", "JSON (*.json)": ".json"}
IMAGE_FILTERS = {"PNG image (*.png)": ".png", "SVG drawing (*.svg)": ".svg"}


class BoardExports:
    def plot_items(self) -> list[tuple[str, Plot]]:
        """Every plot with a name for menus and file names: (tab title: plot title)."""
        return [(tab.title if plot.base_title == tab.title else f"{tab.title}: {plot.base_title}", plot)
                for tab in self.plot_tabs for plot in tab.plots]

    def _plot_name(self, plot: Plot) -> str:
        return next(name for name, item in self.plot_items() if item is plot)

    def shown_data(self, plot: Plot) -> list[ShownSeries]:
        """Exactly what `plot` shows, in full: every visible curve of every visible run."""
        self.redraw_tab(self.plot_tabs.index(self.tab_of(plot)))  # a tab not shown lately may hold older data
        return plot.visible_shown()

    def export_data(self, out: Path, plot: Plot) -> int:
        """Write the series `plot` shows as CSV or JSON (by the suffix of `out`); returns the points written.
        Raises PlotDataError with the reason when the file cannot be written."""
        return write_plot_data(Path(out), self._plot_name(plot), X_AXES[self.x_kind], self.shown_data(plot),
                               log_y=plot.log_y)

    def ask_export_data(self, plot: Plot) -> None:
        name = self._plot_name(plot)
        out = ask_save_path(self, f"Export data of {name}", plot_file_stem(self.run_label, name), DATA_FILTERS,
                            DialogKind.PLOT_DATA)
        if out is not None:
            try:
                self.export_data(out, plot)
            except PlotDataError as exc:
                QMessageBox.warning(self, "Export failed", str(exc))

    def ask_export_image(self, plot: Plot) -> None:
        name = self._plot_name(plot)
        out = ask_save_path(self, f"Export image of {name}", plot_file_stem(self.run_label, name), IMAGE_FILTERS,
                            DialogKind.PLOT_IMAGE)
        if out is not None:
            try:
                self.export_image(out, plot)
            except ExportTargetError as exc:
                QMessageBox.warning(self, "Export failed", str(exc))

    def export_image(self, out: Path, plot: Plot | None = None) -> list[Path]:
        """Write one plot, or every tab (one file per tab), as PNG or SVG by the suffix of `out`.
        Raises ExportTargetError with the reason when a file cannot be written."""
        out = Path(out)
        suffix = image_suffix(out)
        current = self.tabs.currentIndex()
        written: list[Path] = []
        try:
            for index, tab in enumerate(self.plot_tabs):
                if plot is not None and plot not in tab.plots:
                    continue
                target = out if plot is not None else out.with_name(f"{out.stem}-{slug(tab.title)}{out.suffix}")
                self._show_tab_for_export(index)
                write_image(plot if plot is not None else tab.widget.ci, target, suffix)
                written.append(target)
        finally:
            self.tabs.setCurrentIndex(current)
        return written

    def _show_tab_for_export(self, index: int) -> None:
        # A tab that was never shown has neither its size nor its data: show it, lay it out, draw it.
        self.tabs.setCurrentIndex(index)
        self.plot_tabs[index].widget.ci.layout.activate()
        self.redraw_tab(index)
