"""Keys in the window's text fields, where Space cannot pause.

A text field that has the keyboard focus takes Space, as a native app's does. So that Space is never
pressed with nothing happening and no word why: Enter in the toolbar's penalty field applies the
value and hands the focus back to the plots (where Space pauses); Escape in any field does the
same; and Space in a field says in the status bar how to pause from there. A number field cannot
take a space, so there Space types nothing (it would only make the number unreadable).
"""

from __future__ import annotations

from typing import Callable

from PySide6.QtCore import QEvent, QObject, Qt, QTimer
from PySide6.QtGui import QAction, QKeyEvent, QKeySequence
from PySide6.QtWidgets import QLineEdit, QWidget

SPACE_HINT = "Space types into the field: Esc leaves it, {pause} pauses"
NUMBER_SPACE_HINT = "No space in a number: Esc leaves the field, {pause} pauses"


class FieldKeys(QObject):
    """Watches text fields for Enter, Escape and Space; `home` is the widget the focus goes back to."""

    def __init__(self, home: QWidget, hint: Callable[[str], None], pause: QAction,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._home = home
        # It takes the focus back from a field, and on a click, so that Space pauses again.
        home.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        self._hint = hint
        self._pause = pause  # its first shortcut pauses from inside a field
        self._numeric: set[QLineEdit] = set()

    def watch(self, field: QLineEdit, numeric: bool, leave_on_enter: bool = False) -> None:
        field.installEventFilter(self)
        if numeric:
            self._numeric.add(field)
        if leave_on_enter:
            # Once the field has handled Enter: its editingFinished (which applies the value) comes first.
            field.returnPressed.connect(lambda: QTimer.singleShot(0, self.leave_field))

    def leave_field(self) -> None:
        self._home.setFocus(Qt.FocusReason.ShortcutFocusReason)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt's name
        if event.type() != QEvent.Type.KeyPress or not isinstance(event, QKeyEvent):
            return False
        plain = event.modifiers() in (Qt.KeyboardModifier.NoModifier, Qt.KeyboardModifier.KeypadModifier)
        if event.key() == Qt.Key.Key_Escape and plain:
            self.leave_field()
            return True
        if event.key() == Qt.Key.Key_Space and plain:
            numeric = watched in self._numeric
            if numeric or self._pause.isEnabled():  # a space typed into a path needs no word otherwise
                keys = self._pause.shortcut().toString(QKeySequence.SequenceFormat.NativeText)
                self._hint((NUMBER_SPACE_HINT if numeric else SPACE_HINT).format(pause=keys))
            return numeric
        return False
