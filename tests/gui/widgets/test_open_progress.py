"""Opening a run shows its progress with a Cancel button; Cancel leaves the window as it was."""

from __future__ import annotations

from PySide6.QtWidgets import QProgressDialog

from geogui.rundir.columns import ReadCancelled
from geogui.gui import run_controller as run_controller_module


def test_cancel_while_a_run_is_read_stops_the_open(window, tmp_path, monkeypatch):
    run = tmp_path / "run"
    run.mkdir()
    calls = []

    def slow_read(path, progress, cancel):
        progress(10, 100)
        dialog = window.findChild(QProgressDialog)
        assert dialog is not None and dialog.value() == 100  # 10 % of the bar's 1,000 steps
        calls.append(cancel())
        dialog.cancel()  # the user clicks Cancel
        calls.append(cancel())
        raise ReadCancelled()

    monkeypatch.setattr(run_controller_module, "load_run", slow_read)
    title = window.windowTitle()
    assert window.open_run(run) is False
    assert calls == [False, True]
    assert window.status.currentMessage() == "Opening run was cancelled"
    assert window.windowTitle() == title and window.current_run != run
