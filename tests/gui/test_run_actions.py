"""The run's actions: what their tooltips say, and how a refused penalty weight is reported."""

from __future__ import annotations

from PySide6.QtGui import Qt
from PySide6.QtWidgets import QLabel


def test_a_refused_penalty_weight_says_why_in_the_status_bar_and_the_tooltip(window):
    window.toolbar.penalty_edit.setText("-1")
    window.run_actions.penalty_entered.emit("-1")
    assert window.toolbar.penalty_edit.styleSheet()  # the red border, and the reason beside it:
    assert "greater than or equal to 0" in window.toolbar.penalty_edit.toolTip()
    assert window.status.currentMessage().startswith("Penalty weight refused: ")
    assert "greater than or equal to 0" in window.status.currentMessage()


def test_the_pause_tooltip_names_both_shortcuts(window):
    assert window.toolbar.pause_action.toolTip() == "Pause or resume between batches (Ctrl+P, Space)"


def test_the_mode_tooltips_are_rich_text_that_qt_wraps_to_a_readable_width(window):
    for mode, action in window.toolbar.mode_actions.items():
        tip = action.toolTip()
        assert Qt.mightBeRichText(tip), tip  # Qt word-wraps a rich-text tooltip; plain text is one line
        label = QLabel(tip)  # what QToolTip shows it in
        label.setWordWrap(True)
        assert label.sizeHint().width() <= 600, (mode, label.sizeHint().width())
        assert mode.label in tip

