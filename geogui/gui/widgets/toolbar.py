"""The run toolbar: Start / Pause-Resume / Stop, the three mode buttons and the penalty-weight field.

It only reports what the user asked for (signals and the actions' `triggered`); the main window
decides what that means for the settings and the running trainer.
"""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QAction, QActionGroup, QColor, QIcon, QKeySequence, QPixmap
from PySide6.QtWidgets import QLabel, QLineEdit, QStyle, QToolBar, QWidget

from geogui.gui.palette import mode_color
from geogui.settings import MODE_DESCRIPTIONS, Mode

INVALID_STYLE = "QLineEdit { border: 1px solid #c62828; }"


def _swatch(color: str, size: int = 12) -> QIcon:
    pixmap = QPixmap(size, size)
    pixmap.fill(QColor(color))
    return QIcon(pixmap)


class RunToolbar(QToolBar):
    mode_chosen = Signal(object)  # Mode, clicked by the user
    penalty_entered = Signal(str)  # the text of the penalty-weight field, when the user commits it

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Run", parent)
        self.setObjectName("run-toolbar")
        self.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.setIconSize(QSize(16, 16))
        style = self.style()

        self.start_action = QAction(style.standardIcon(QStyle.StandardPixmap.SP_MediaPlay), "Start", self)
        self.start_action.setShortcut(QKeySequence("Ctrl+R"))
        self.pause_action = QAction(style.standardIcon(QStyle.StandardPixmap.SP_MediaPause), "Pause", self)
        self.pause_action.setShortcuts([QKeySequence(Qt.Key.Key_Space), QKeySequence("Ctrl+P")])
        self.stop_action = QAction(style.standardIcon(QStyle.StandardPixmap.SP_MediaStop), "Stop", self)
        self.stop_action.setShortcut(QKeySequence("Ctrl+."))
        for action, what in ((self.start_action, "Start a new run with these settings"),
                             (self.pause_action, "Pause or resume between batches"),
                             (self.stop_action, "Stop after the current batch")):
            action.setToolTip(f"{what} ({action.shortcut().toString(QKeySequence.SequenceFormat.NativeText)})")
            self.addAction(action)
        self.addSeparator()

        self.mode_group = QActionGroup(self)
        self.mode_group.setExclusive(True)
        self.mode_actions: dict[Mode, QAction] = {}
        for mode in Mode:
            action = QAction(_swatch(mode_color(mode.value)), mode.label, self)
            action.setCheckable(True)
            action.setToolTip(f"{mode.label}: {MODE_DESCRIPTIONS[mode]}")
            self.mode_group.addAction(action)
            self.addAction(action)
            self.mode_actions[mode] = action
        # `triggered` fires on user clicks only, so set_mode() below never echoes back as a request.
        self.mode_group.triggered.connect(lambda action: self.mode_chosen.emit(self.mode_of(action)))
        self.addSeparator()

        self.addWidget(QLabel(" Penalty weight "))
        self.penalty_edit = QLineEdit()
        self.penalty_edit.setFixedWidth(90)
        self.penalty_edit.setToolTip("Weight of the rotation penalty; Enter applies it (live while running)")
        self.penalty_edit.editingFinished.connect(lambda: self.penalty_entered.emit(self.penalty_edit.text().strip()))
        self.addWidget(self.penalty_edit)

    def set_mode(self, mode: Mode) -> None:
        self.mode_actions[mode].setChecked(True)

    def checked_mode(self) -> Mode:
        return self.mode_of(self.mode_group.checkedAction())

    def mode_of(self, action: QAction) -> Mode:
        return next(mode for mode, candidate in self.mode_actions.items() if candidate is action)

    def show_penalty_error(self, message: str | None) -> None:
        self.penalty_edit.setStyleSheet(INVALID_STYLE if message else "")
        self.penalty_edit.setToolTip(message or "Weight of the rotation penalty; Enter applies it (live while running)")

    def set_pause_label(self, paused: bool) -> None:
        self.pause_action.setText("Resume" if paused else "Pause")
        icon = QStyle.StandardPixmap.SP_MediaPlay if paused else QStyle.StandardPixmap.SP_MediaPause
        self.pause_action.setIcon(self.style().standardIcon(icon))
