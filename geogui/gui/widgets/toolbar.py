"""The run toolbar: Start / Pause-Resume / Stop, the three mode buttons and the penalty-weight field,
laid out from the run's actions (`geogui.gui.run_actions`)."""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt
from PySide6.QtWidgets import QLabel, QToolBar, QWidget

from geogui.gui.run_actions import RunActions


class RunToolbar(QToolBar):
    def __init__(self, actions: RunActions, parent: QWidget | None = None) -> None:
        super().__init__("Run", parent)
        self.setObjectName("run-toolbar")
        self.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.setIconSize(QSize(16, 16))
        self.start_action, self.pause_action, self.stop_action = actions.start, actions.pause, actions.stop
        self.mode_actions = actions.modes
        self.penalty_edit = actions.penalty
        for action in (self.start_action, self.pause_action, self.stop_action):
            self.addAction(action)
        self.addSeparator()
        for action in self.mode_actions.values():
            self.addAction(action)
        self.addSeparator()
        self.addWidget(QLabel(" Penalty weight "))
        self.addWidget(self.penalty_edit)
