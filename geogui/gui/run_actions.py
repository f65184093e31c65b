"""The run's controls, made once: Start, Pause/Resume, Stop, the three modes, the penalty weight and
Resume Selected Run, with their shortcuts and tooltips. The toolbar and the Run menu show these very
objects. They only report what the user asked for (the actions' `triggered`, `mode_chosen`,
`penalty_entered`); the run controller decides what that means for the run.
"""

from __future__ import annotations

import html

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QAction, QActionGroup, QColor, QIcon, QKeySequence, QPixmap
from PySide6.QtWidgets import QLineEdit, QStyle, QWidget

from geogui.gui.palette import mode_color
from geogui.settings import MODE_DESCRIPTIONS, Mode

INVALID_STYLE = "QLineEdit { border: 1px solid #c62828; }"
PENALTY_TIP = "Weight of the rotation penalty; Enter applies it (live while running) and returns to the plots"
# Ctrl+P first: menus show an action's first shortcut, and Ctrl+P pauses even while a text field has
# the keyboard focus (where Space types a space).
PAUSE_KEYS = ["Ctrl+P", Qt.Key.Key_Space]
MODE_KEYS = {Mode.STANDARD: "Ctrl+1", Mode.GEOMETRIC: "Ctrl+2", Mode.GEOMETRIC_FAST: "Ctrl+3"}


def shortcut_text(action: QAction) -> str:
    """All of an action's shortcuts as the platform writes them ("Ctrl+P, Space"; "⌘P, Space" on macOS)."""
    return ", ".join(key.toString(QKeySequence.SequenceFormat.NativeText) for key in action.shortcuts())


def wrapped_tip(text: str) -> str:
    """A tooltip Qt wraps: rich text gets a word-wrapped tooltip label, plain text one line however long."""
    return f"<qt>{html.escape(text)}</qt>"


def _swatch(color: str, size: int = 12) -> QIcon:
    pixmap = QPixmap(size, size)
    pixmap.fill(QColor(color))
    return QIcon(pixmap)


class RunActions(QObject):
    mode_chosen = Signal(object)  # Mode, clicked by the user
    penalty_entered = Signal(str)  # the text of the penalty-weight field, when the user commits it
    penalty_refused = Signal(str)  # why the penalty weight shown is refused, once each time the reason changes

    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent)
        self._style = parent.style()
        self.start = self._action(QStyle.StandardPixmap.SP_MediaPlay, "Start", ["Ctrl+R"],
                                  "Start a new run with these settings")
        self._start_tip = self.start.toolTip()
        self.pause = self._action(QStyle.StandardPixmap.SP_MediaPause, "Pause", PAUSE_KEYS,
                                  "Pause or resume between batches")
        self.pause.setProperty("listed_as", "Pause / Resume")  # in Help → Keyboard Shortcuts, whichever it shows
        self.stop = self._action(QStyle.StandardPixmap.SP_MediaStop, "Stop", ["Ctrl+."], "Stop after the current batch")
        self.mode_group = QActionGroup(self)
        self.mode_group.setExclusive(True)
        self.modes: dict[Mode, QAction] = {}
        for mode in Mode:
            action = QAction(_swatch(mode_color(mode.value)), mode.label, self)
            action.setCheckable(True)
            action.setShortcut(QKeySequence(MODE_KEYS[mode]))
            action.setToolTip(wrapped_tip(f"{mode.label} ({shortcut_text(action)}): {MODE_DESCRIPTIONS[mode]}"))
            self.mode_group.addAction(action)
            self.modes[mode] = action
        # `triggered` fires on user clicks only, so set_mode() below never echoes back as a request.
        self.mode_group.triggered.connect(lambda action: self.mode_chosen.emit(self.mode_of(action)))
        self.penalty = QLineEdit()
        self.penalty.setFixedWidth(90)
        self.penalty.setToolTip(PENALTY_TIP)
        self._penalty_problem: str | None = None
        self.penalty.editingFinished.connect(lambda: self.penalty_entered.emit(self.penalty.text().strip()))
        self.resume_selected = QAction("Resume Selected Run", self)
        self.resume_selected.setToolTip("Continue the run selected in the Runs panel from its latest checkpoint")
        self.resume_selected.setMenuRole(QAction.MenuRole.NoRole)

    def _action(self, icon: QStyle.StandardPixmap, text: str, keys: list, what: str) -> QAction:
        action = QAction(self._style.standardIcon(icon), text, self)
        action.setShortcuts([QKeySequence(key) for key in keys])
        action.setToolTip(f"{what} ({shortcut_text(action)})")
        return action

    def enable(self, start: bool, steer: bool, why_no_start: str | None = None) -> None:
        """Start when a run may start (else its tooltip says why, where that is not plain to see);
        Pause and Stop when there is a run to steer."""
        self.start.setEnabled(start)
        self.start.setToolTip(why_no_start or self._start_tip)
        self.pause.setEnabled(steer)
        self.stop.setEnabled(steer)

    def set_mode(self, mode: Mode) -> None:
        self.modes[mode].setChecked(True)

    def checked_mode(self) -> Mode:
        return self.mode_of(self.mode_group.checkedAction())

    def mode_of(self, action: QAction) -> Mode:
        return next(mode for mode, candidate in self.modes.items() if candidate is action)

    def set_penalty_text(self, text: str) -> None:
        if self.penalty.text().strip() != text:
            self.penalty.setText(text)

    def show_penalty_error(self, message: str | None) -> None:
        """A red border and the reason as the tooltip; the reason is also reported (`penalty_refused`),
        once, for the status bar: a border alone does not say what is wrong."""
        self.penalty.setStyleSheet(INVALID_STYLE if message else "")
        self.penalty.setToolTip(f"Penalty weight refused: {message}" if message else PENALTY_TIP)
        if message and message != self._penalty_problem:
            self.penalty_refused.emit(message)
        self._penalty_problem = message

    def set_paused(self, paused: bool) -> None:
        self.pause.setText("Resume" if paused else "Pause")
        icon = QStyle.StandardPixmap.SP_MediaPlay if paused else QStyle.StandardPixmap.SP_MediaPause
        self.pause.setIcon(self._style.standardIcon(icon))
