"""Help → Keyboard Shortcuts: every action of the window that has a shortcut, read from the actions
themselves when the dialog opens, so that the list cannot go stale. An action whose text changes
with the state (Pause / Resume) names itself for the list in its LISTED_AS property."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (QAbstractItemView, QDialog, QDialogButtonBox, QHeaderView, QLabel, QTableWidget,
                               QTableWidgetItem, QVBoxLayout, QWidget)

LISTED_AS = "listed_as"
FIELD_NOTE = ("In a text field, Space types (a number field takes none): Esc leaves the field, Enter in the "
              "penalty weight applies it and returns to the plots.")


def menu_text(action: QAction) -> str:
    """The action's text as a menu shows it: without the '&' of its mnemonic ('&&' is a literal '&')."""
    return action.text().replace("&&", "\0").replace("&", "").replace("\0", "&").rstrip()


def shortcut_rows(window: QWidget) -> list[tuple[str, str]]:
    """(action, its shortcuts as the platform writes them) for every action of `window` with a shortcut."""
    rows, seen = [], set()
    for action in window.findChildren(QAction):
        keys = [key.toString(QKeySequence.SequenceFormat.NativeText) for key in action.shortcuts() if not key.isEmpty()]
        if keys and id(action) not in seen:
            seen.add(id(action))
            rows.append((action.property(LISTED_AS) or menu_text(action), ", ".join(keys)))
    return rows


class ShortcutsDialog(QDialog):
    def __init__(self, window: QWidget) -> None:
        super().__init__(window)
        self.setWindowTitle("Keyboard Shortcuts")
        self.rows = shortcut_rows(window)
        self.table = QTableWidget(len(self.rows), 2)
        self.table.setHorizontalHeaderLabels(["Action", "Shortcut"])
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.table.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.table.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        for row, (text, keys) in enumerate(self.rows):
            self.table.setItem(row, 0, QTableWidgetItem(text))
            self.table.setItem(row, 1, QTableWidgetItem(keys))
        note = QLabel(FIELD_NOTE)
        note.setWordWrap(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.table, 1)
        layout.addWidget(note)
        layout.addWidget(buttons)
        self.resize(420, 420)
