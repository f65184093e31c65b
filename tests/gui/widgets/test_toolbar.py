"""The run toolbar: the active mode is unmistakable, in a light palette and a dark one."""

from __future__ import annotations

from PySide6.QtGui import QColor, QImage, QPalette
from PySide6.QtWidgets import QApplication

from geogui.gui.palette import mode_color
from geogui.settings import Mode


def share_in_mode_color(window, mode: Mode) -> float:
    """How much of the mode's button is painted in the mode's colour (its swatch icon alone: ~6 %)."""
    button = window.toolbar.widgetForAction(window.toolbar.mode_actions[mode])
    image = QImage(button.grab().toImage())
    color = QColor(mode_color(mode.value)).name()
    pixels = [(x, y) for x in range(image.width()) for y in range(image.height())]
    return sum(image.pixelColor(x, y).name() == color for x, y in pixels) / len(pixels)


def dark_palette() -> QPalette:
    palette = QPalette()
    for role, color in ((QPalette.ColorRole.Window, "#202020"), (QPalette.ColorRole.Button, "#303030"),
                        (QPalette.ColorRole.WindowText, "#e0e0e0"), (QPalette.ColorRole.ButtonText, "#e0e0e0")):
        palette.setColor(role, QColor(color))
    return palette


def test_the_checked_mode_button_is_filled_with_the_modes_colour_in_bold(window):
    for palette in (QApplication.palette(), dark_palette()):
        window.setPalette(palette)
        for checked in Mode:
            window.run_actions.set_mode(checked)
            for mode in Mode:
                button = window.toolbar.widgetForAction(window.toolbar.mode_actions[mode])
                share = share_in_mode_color(window, mode)
                assert share > 0.5 if mode is checked else share < 0.2, (mode, checked, share)
                assert "font-weight: bold" in button.styleSheet()
