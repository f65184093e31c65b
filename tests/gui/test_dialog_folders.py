"""Every file dialog opens in the folder last chosen in its kind of dialog, across launches, and
proposes a file name that says what is in it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PySide6.QtWidgets import QFileDialog

from geogui import paths
from geogui.gui import dialog_folders
from geogui.gui.dialog_folders import DialogKind, last_folder

RUN = "20260512-143012-geometric_fast-a3f9"


class FakeSaveDialog:
    """QFileDialog.getSaveFileName that notes where it opened and answers `answer`."""

    def __init__(self, monkeypatch):
        self.opened_at: list[Path] = []
        self.answer = ""
        monkeypatch.setattr(QFileDialog, "getSaveFileName", self)

    def __call__(self, _parent, _title, start, _filters):
        self.opened_at.append(Path(start))
        return self.answer, ""


@pytest.fixture
def run_dir():
    path = paths.runs_dir() / RUN
    path.mkdir()
    (path / "meta.json").write_text("{not json")
    return path


@pytest.fixture
def window(window, run_dir, monkeypatch):
    window.runs_panel.refresh()
    window.runs_panel.select(run_dir)
    monkeypatch.setattr(window.exports, "export_run_to", lambda out, run=None: True)
    monkeypatch.setattr(window.exports, "export_plots_to", lambda out, plot=None: [out])
    return window


def test_run_export_opens_where_the_last_one_went_also_after_a_new_launch(window, tmp_path, monkeypatch):
    dialog = FakeSaveDialog(monkeypatch)
    dialog.answer = str(tmp_path / "exports" / "first.csv")
    (tmp_path / "exports").mkdir()
    window.exports.ask_export_run()
    assert dialog.opened_at[0] == Path.home() / f"{RUN}.csv"  # first use: the home folder
    window.exports.ask_export_run()
    assert dialog.opened_at[1] == tmp_path / "exports" / f"{RUN}.csv"
    saved = json.loads((paths.config_dir() / dialog_folders.FILE_NAME).read_text())
    assert saved[DialogKind.RUN_EXPORT.value] == str((tmp_path / "exports").resolve())
    # Plot images are another kind: they keep their own folder.
    window.exports.ask_export_plots()
    assert dialog.opened_at[2].parent == Path.home()


def test_plot_export_proposes_the_run_and_the_plots_name(window, monkeypatch):
    dialog = FakeSaveDialog(monkeypatch)
    monkeypatch.setattr(window.controller, "current_run", paths.runs_dir() / RUN)
    loss = window.plots.training.loss_plot
    window.exports.ask_export_plots(loss, "Training: Loss")
    assert dialog.opened_at[-1].name == f"{RUN}-training-loss.png"
    window.exports.ask_export_plots()  # all plots: one file per tab, <run>-<tab>.png
    assert dialog.opened_at[-1].name == f"{RUN}.png"
    window.plots.run_label = RUN
    window.plots.ask_export_image(window.plots.experts.expert_plot)
    assert dialog.opened_at[-1].name.startswith(f"{RUN}-experts")
    window.plots.ask_export_data(loss)
    assert dialog.opened_at[-1].name == f"{RUN}-training-loss.csv"


def test_open_run_starts_in_the_runs_folder_then_beside_the_run_last_opened(window, tmp_path, monkeypatch):
    opened_at, elsewhere = [], tmp_path / "elsewhere" / "some-run"
    elsewhere.mkdir(parents=True)
    monkeypatch.setattr(QFileDialog, "getExistingDirectory",
                        lambda _parent, _title, start: opened_at.append(Path(start)) or str(elsewhere))
    monkeypatch.setattr(window, "open_run", lambda path: True)
    window.ask_open_run()
    window.ask_open_run()
    assert opened_at == [paths.runs_dir(), elsewhere.parent.resolve()]


def test_tensorboard_log_directory_is_remembered_itself(window, tmp_path, monkeypatch):
    logs = tmp_path / "logs"
    logs.mkdir()
    opened_at = []
    monkeypatch.setattr("geogui.gui.run_exports.tensorboard_available", lambda: True)
    monkeypatch.setattr(QFileDialog, "getExistingDirectory",
                        lambda _parent, _title, start: opened_at.append(Path(start)) or str(logs))
    monkeypatch.setattr(window.exports, "export_tensorboard_to", lambda logdir, run=None: True)
    window.exports.ask_export_tensorboard()
    window.exports.ask_export_tensorboard()
    assert opened_at == [Path.home(), logs.resolve()]


@pytest.mark.parametrize("content", ["{not json", "[1, 2]", '{"run-export": 3}', "\xff\xfe"])
def test_a_corrupt_file_or_a_folder_gone_falls_back_to_the_default(content, tmp_path):
    (paths.config_dir() / dialog_folders.FILE_NAME).write_text(content, encoding="latin-1")
    assert last_folder(DialogKind.RUN_EXPORT) == Path.home()
    assert last_folder(DialogKind.OPEN_RUN) == paths.runs_dir()
    gone = tmp_path / "gone"
    gone.mkdir()
    dialog_folders.remember(DialogKind.PLOT_DATA, gone / "data.csv")
    assert last_folder(DialogKind.PLOT_DATA) == gone.resolve()
    gone.rmdir()
    assert last_folder(DialogKind.PLOT_DATA) == Path.home()
