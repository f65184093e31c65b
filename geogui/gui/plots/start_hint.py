"""What the plots say before there is anything to plot: how to start a run or open one.

A first screen of empty 0–1 axes says nothing; this hint, centred over the plots, says what to
press. The board shows it while it has no run (at start-up, and after its run was deleted) and
nothing is compared; the window supplies the text, since it owns the actions and their shortcuts.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QEvent, QObject, QRect, Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QLabel, QWidget

# What an empty data path trains on, as the settings describe it (the corpus module itself would
# import torch, which the window must not do before a run starts).
DEFAULT_DATA = "the embedded lambda-calculus corpus"


def shortcut_text(action: QAction) -> str:
    """The action's first shortcut as the platform writes it (Ctrl+R here, ⌘R on macOS)."""
    return action.shortcut().toString(QKeySequence.SequenceFormat.NativeText)


def start_hint_text(start: QAction, open_run: QAction, data_path: str = "", settings_valid: bool = True) -> str:
    """'Press Start (Ctrl+R) to train on <data>, or open a run (Ctrl+O)'; `data_path` as typed in the
    settings ('' for the embedded corpus). While the settings are refused Start is off, and the hint
    says what to fix rather than what to press."""
    data = Path(data_path).name if data_path.strip() else DEFAULT_DATA
    start_name = start.text().replace("&", "")
    if not settings_valid:
        return (f"Fix the settings marked ⚠ to {start_name.lower()} training,\n"
                f"or open a run ({shortcut_text(open_run)})")
    return (f"Press {start_name} ({shortcut_text(start)}) to train on {data},\n"
            f"or open a run ({shortcut_text(open_run)})")


class StartHint(QLabel):
    """A centred, click-through note over `over` (the plots' area of its parent), shown while it is
    wanted and has a text."""

    def __init__(self, parent: QWidget, over: QWidget) -> None:
        super().__init__(parent)
        self._over = over
        self._wanted = True
        over.installEventFilter(self)  # it follows the plots' area as that moves and resizes
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self.setObjectName("start-hint")
        self.setStyleSheet("#start-hint { background: rgba(255, 255, 255, 235); color: #444;"
                           " border: 1px solid #ccc; border-radius: 6px; padding: 14px 22px; font-size: 11pt; }")
        self.hide()

    def set_wanted(self, wanted: bool) -> None:
        self._wanted = wanted
        self.setVisible(wanted and bool(self.text()))

    def show_text(self, text: str) -> None:
        self.setText(text)
        self.place()
        self.set_wanted(self._wanted)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt's name
        if watched is self._over and event.type() in (QEvent.Type.Resize, QEvent.Type.Move):
            self.place()
        return False

    def place(self) -> None:
        """Centre it over the plots (after a resize, or a new text)."""
        self.adjustSize()
        area: QRect = self._over.geometry()
        self.move(area.center().x() - self.width() // 2, area.center().y() - self.height() // 2)
        self.raise_()
