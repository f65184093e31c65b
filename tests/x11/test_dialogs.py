"""The real file dialogs open in the folder last chosen in their kind of dialog (and the runs folder
for Open Run at first)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QFileDialog

from geogui import paths
from geogui.gui.dialog_folders import DialogKind, remember


def _open_and_look(qtbot, ask) -> dict:
    """Run `ask` (which opens a modal file dialog), note the dialog's folder and file name, cancel it."""
    seen: dict = {}

    def look():
        dialog = QApplication.activeModalWidget()
        if not isinstance(dialog, QFileDialog):
            QTimer.singleShot(20, look)  # not up yet
            return
        seen["folder"] = Path(dialog.directory().absolutePath())
        seen["selected"] = [Path(name).name for name in dialog.selectedFiles()]
        dialog.reject()

    QTimer.singleShot(0, look)
    ask()
    qtbot.waitUntil(lambda: "folder" in seen, timeout=5000)
    return seen


def test_open_run_opens_in_the_runs_folder(window, qtbot):
    seen = _open_and_look(qtbot, window.ask_open_run)
    assert seen["folder"] == paths.runs_dir().resolve()


def test_plot_export_opens_in_the_last_plot_folder_with_the_plots_name(window, qtbot, tmp_path):
    folder = tmp_path / "figures"
    folder.mkdir()
    remember(DialogKind.PLOT_IMAGE, folder / "an-earlier-plot.png")
    loss = window.plots.training.loss_plot
    seen = _open_and_look(qtbot, lambda: window.exports.ask_export_plots(loss, "Training: Loss"))
    assert seen["folder"] == folder.resolve()
    assert seen["selected"] == ["geogui-training-loss.png"]
