"""Space, Enter and Escape in the window's text fields, with real keyboard focus: Space never
leaves the user with nothing happening and no word why (`geogui.gui.field_keys`)."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

TIMEOUT_MS = 60_000


def focus(qtbot, widget) -> None:
    qtbot.mouseClick(widget, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: QApplication.focusWidget() is widget, timeout=5000)


def press(qtbot, key, modifier=Qt.KeyboardModifier.NoModifier) -> None:
    """A key typed where the keyboard focus is, as the user would."""
    qtbot.keyClick(QApplication.focusWidget(), key, modifier)


def test_enter_in_the_penalty_field_applies_it_and_space_then_pauses(window, qtbot):
    assert window.start_run()
    qtbot.waitUntil(lambda: len(window.plots.series) >= 2, timeout=TIMEOUT_MS)
    penalty = window.toolbar.penalty_edit
    focus(qtbot, penalty)
    penalty.selectAll()
    qtbot.keyClicks(penalty, "0.01")
    with qtbot.waitSignal(window.session.worker.mode_changed, timeout=TIMEOUT_MS) as changed:
        press(qtbot, Qt.Key.Key_Return)
    assert changed.args[0].penalty_weight == 0.01
    qtbot.waitUntil(lambda: QApplication.focusWidget() is window.plots, timeout=5000)  # handed back
    press(qtbot, Qt.Key.Key_Space)
    qtbot.waitUntil(lambda: window.toolbar.pause_action.text() == "Resume", timeout=TIMEOUT_MS)
    # From inside a field, Space types, and the status bar says how to pause from there.
    focus(qtbot, penalty)
    press(qtbot, Qt.Key.Key_Space)
    assert window.toolbar.pause_action.text() == "Resume" and penalty.text() == "0.01"
    assert "Esc leaves the field, Ctrl+P pauses" in window.status.currentMessage()
    press(qtbot, Qt.Key.Key_P, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: window.toolbar.pause_action.text() == "Pause", timeout=TIMEOUT_MS)
    with qtbot.waitSignal(window.session.ended, timeout=TIMEOUT_MS):
        window.stop_run()


def test_space_in_a_number_field_types_nothing_says_why_and_escape_leaves_the_field(window, qtbot):
    batch_size = window.panel.editor("run", "batch_size").line
    window.dock.raise_()
    focus(qtbot, batch_size)
    before = batch_size.text()
    press(qtbot, Qt.Key.Key_Space)
    assert batch_size.text() == before and window.panel.is_valid()
    assert "No space in a number" in window.status.currentMessage()
    press(qtbot, Qt.Key.Key_Escape)
    qtbot.waitUntil(lambda: QApplication.focusWidget() is window.plots, timeout=5000)


def test_space_in_a_path_field_types_a_space(window, qtbot):
    path = window.panel.editor("data", "path").line
    window.panel.setCurrentIndex(list(window.panel.forms).index("data"))
    focus(qtbot, path)
    qtbot.keyClicks(path, "my")
    press(qtbot, Qt.Key.Key_Space)
    qtbot.keyClicks(path, "corpus.txt")
    assert path.text() == "my corpus.txt"
    assert "space" not in window.status.currentMessage().lower()  # no run to pause: nothing to say
