"""Before any run is shown the plots say how to start one or open one; a run makes the hint go."""

from __future__ import annotations

import pytest

from geogui.gui.main_window import MainWindow
from geogui.gui.plotdata.run_series import RunSeries
from geogui.gui.plots.overlays import Overlay

from tests.gui.conftest import synthetic_record


@pytest.fixture
def board(empty_board):
    return empty_board


@pytest.fixture
def window(qtbot, tiny):
    window = MainWindow(tiny, persist=False)
    qtbot.addWidget(window)
    window.show()
    return window


def test_the_hint_shows_until_a_run_is_shown_and_again_once_it_is_cleared(board):
    hint = board.start_hint
    assert not hint.isVisible()  # no text yet
    board.start_hint.show_text("Press Start")
    assert hint.isVisible() and hint.text() == "Press Start"
    assert board.tabs.geometry().contains(hint.geometry().center())
    board.start_run(8, 4)
    assert not hint.isVisible()
    board.clear_run()
    assert hint.isVisible() and len(board.series) == 0
    other = RunSeries(8, 4)
    other.append([synthetic_record(step) for step in range(1, 5)])
    board.set_overlays([Overlay("a", other), Overlay("b", other)])
    assert not hint.isVisible()  # runs compared: they are the plots
    board.set_overlays([])
    assert hint.isVisible()


def test_the_window_hint_names_the_shortcuts_and_the_data(window, tmp_path):
    hint = window.plots.start_hint
    start = window.run_actions.start.shortcut().toString()
    assert hint.isVisible() and start and start in hint.text()
    assert window.open_run_action.shortcut().toString() in hint.text()
    assert "embedded lambda-calculus corpus" in hint.text()
    data = tmp_path / "notes.txt"
    data.write_text("some text to train on\n" * 20)
    window.panel.editor("data", "path").line.setText(str(data))
    assert "notes.txt" in hint.text() and str(tmp_path) not in hint.text()


def test_the_hint_goes_when_a_run_starts_and_comes_back_when_the_current_run_is_deleted(window, tmp_path):
    hint = window.plots.start_hint
    run = tmp_path / "run-a"
    window.plots.start_run(8, 4)  # what opening, following or starting a run does first
    window.controller.set_current_run(run)
    assert not hint.isVisible()
    window.runs_panel.deleted.emit(run)
    assert hint.isVisible() and window.current_run is None and len(window.plots.series) == 0


def test_with_refused_settings_the_hint_says_to_fix_them_not_to_press_start(window, tmp_path):
    hint = window.plots.start_hint
    window.panel.editor("data", "path").line.setText(str(tmp_path / "missing.txt"))
    assert not window.run_actions.start.isEnabled()
    assert "Press" not in hint.text() and "Fix the settings" in hint.text()
    window.panel.editor("data", "path").line.setText("")
    assert window.run_actions.start.isEnabled() and hint.text().startswith("Press Start")
