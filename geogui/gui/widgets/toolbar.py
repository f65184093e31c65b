"""The run toolbar: Start / Pause-Resume / Stop, the three mode buttons and the penalty-weight field,
laid out from the run's actions (`geogui.gui.run_actions`)."""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QLabel, QToolBar, QWidget

from geogui.gui.palette import mode_color
from geogui.gui.run_actions import RunActions


def checked_mode_style(color: str) -> str:
    """The checked mode's button filled with the mode's colour, in bold: a frame alone is too faint to
    tell the active mode at a glance, in a light palette or a dark one. The text is black or white,
    whichever reads better on that colour."""
    fill = QColor(color)
    text = "#000000" if _contrast(fill, QColor("#000000")) > _contrast(fill, QColor("#ffffff")) else "#ffffff"
    return (f"QToolButton:checked {{ background-color: {color}; color: {text}; font-weight: bold; "
            f"border: 1px solid {fill.darker(140).name()}; border-radius: 3px; }}")


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
        for mode, action in self.mode_actions.items():
            self.addAction(action)
            self.widgetForAction(action).setStyleSheet(checked_mode_style(mode_color(mode.value)))
        self.addSeparator()
        self.addWidget(QLabel(" Penalty weight "))
        self.addWidget(self.penalty_edit)


def _contrast(first: QColor, second: QColor) -> float:
    """WCAG contrast ratio of two colours (1 … 21)."""
    lighter, darker = sorted((_luminance(first), _luminance(second)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


def _luminance(color: QColor) -> float:
    def linear(channel: float) -> float:
        return channel / 12.92 if channel <= 0.04045 else ((channel + 0.055) / 1.055) ** 2.4

    return 0.2126 * linear(color.redF()) + 0.7152 * linear(color.greenF()) + 0.0722 * linear(color.blueF())
