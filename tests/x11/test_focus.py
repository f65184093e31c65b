from __future__ import annotations

from PySide6.QtWidgets import QApplication


def test_the_window_takes_the_keyboard_focus(window, qtbot):
    """The ground every other test here stands on: on a real X server the shown window is the active
    one, so keys typed reach it."""
    assert QApplication.activeWindow() is window
    qtbot.waitUntil(lambda: QApplication.focusWidget() is not None, timeout=5000)
    assert QApplication.focusWidget().window() is window
