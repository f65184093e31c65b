"""Help → Keyboard Shortcuts lists every action of the window that has a shortcut, read from the
actions themselves."""

from __future__ import annotations

from PySide6.QtGui import QAction, QKeySequence

from geogui.gui.widgets.shortcuts_dialog import ShortcutsDialog


def native(action: QAction) -> str:
    return ", ".join(key.toString(QKeySequence.SequenceFormat.NativeText) for key in action.shortcuts())


def help_entry(window) -> QAction:
    help_menu = next(a.menu() for a in window.menuBar().actions() if a.text() == "&Help")
    return next(a for a in help_menu.actions() if a.text() == "Keyboard Shortcuts")


def test_every_action_with_a_shortcut_is_listed_with_its_keys(qtbot, window):
    help_entry(window).trigger()
    box = window.shortcuts_box
    assert box is not None and box.isVisible()
    listed = dict(box.rows)
    with_keys = [a for a in window.findChildren(QAction) if a.shortcuts()]
    names = {a.text().replace("&", "") for a in with_keys}
    # Quit too, where the platform has a key for it (Ctrl+Q on Linux, ⌘Q on macOS; none on Windows).
    assert {"Start", "Pause", "Stop", "Standard", "Geometric", "Geometric fast", "Open Run…"} <= names
    for action in with_keys:
        assert listed[action.property("listed_as") or action.text().replace("&", "")] == native(action)
    assert listed["Pause / Resume"] == "Ctrl+P, Space"  # whichever the action says now
    assert box.table.rowCount() == len(box.rows)


def test_a_new_action_with_a_shortcut_appears(window):
    action = QAction("&Frobnicate", window)
    action.setShortcut(QKeySequence("Ctrl+Shift+F"))
    window.addAction(action)
    assert ("Frobnicate", native(action)) in ShortcutsDialog(window).rows


def test_the_dialog_does_not_block_the_event_loop(qtbot, window, monkeypatch):
    monkeypatch.setattr(ShortcutsDialog, "exec", lambda self: (_ for _ in ()).throw(AssertionError("exec()")))
    window.show_shortcuts()
    qtbot.waitUntil(lambda: window.shortcuts_box.isVisible(), timeout=5000)
    window.shortcuts_box.close()
