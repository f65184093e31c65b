"""File → Export to TensorBoard…, with and without the optional extra."""

from __future__ import annotations

import pytest
from PySide6.QtWidgets import QFileDialog

from geogui import paths
from geogui.rundir.recorder import record_run
from geogui.rundir.runlog import RunLog
from geogui.rundir.export.tensorboard import INSTALL_HINT, tensorboard_available
from geogui.engine.trainer import Trainer
from geogui.gui import run_exports
from geogui.gui.main_window import MainWindow

from tests.gui.conftest import tiny_settings


def make_window(qtbot) -> MainWindow:
    window = MainWindow(tiny_settings(steps=100_000), persist=False)
    qtbot.addWidget(window)
    window.show()
    return window


def recorded_run(name: str, steps: int):
    settings = tiny_settings(steps=steps, checkpoint_interval=0)
    path = paths.runs_dir() / name
    for _event in record_run(Trainer(settings), RunLog(path, settings)):
        pass
    return path


@pytest.mark.skipif(not tensorboard_available(), reason=f"the optional extra is not installed: {INSTALL_HINT}")
def test_the_menu_writes_the_open_run_as_event_files(qtbot, tmp_path, monkeypatch):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    window = make_window(qtbot)
    run = recorded_run("tb-run", steps=6)
    assert window.open_run(run)
    assert window.plots.run_label == "tb-run"  # the readout and exported plot data name the run
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *args: str(tmp_path / "logs"))
    window.exports.export_tensorboard_action.trigger()
    accumulator = EventAccumulator(str(tmp_path / "logs" / "tb-run"))
    accumulator.Reload()
    assert [event.step for event in accumulator.Scalars("loss/total")] == [1, 2, 3, 4, 5, 6]
    assert "for TensorBoard" in window.status.currentMessage()


def test_without_the_extra_the_menu_item_says_how_to_install(qtbot, monkeypatch):
    monkeypatch.setattr(run_exports, "tensorboard_available", lambda: False)
    window = make_window(qtbot)
    assert 'pip install "geogui[tensorboard]"' in window.exports.export_tensorboard_action.text()
    window.exports.export_tensorboard_action.trigger()
    assert window.warning_box.text() == INSTALL_HINT
