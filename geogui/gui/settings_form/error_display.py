"""How the settings forms say what is wrong, without moving a single field.

A field that pydantic refuses gets its label in red and a warning sign inside its editor, with the
message as the editor's tooltip; every message of the section is listed, each naming its field by
the label the form shows, in a message area of fixed height under the section. Nothing is inserted
between the fields, so the form never jumps while the user types.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFrame, QLabel, QScrollArea, QWidget

ERROR_COLOR = "#c62828"
MESSAGE_LINES = 3  # the area's height; longer lists scroll inside it


def problem_message(model: type[BaseModel], problem: dict[str, Any]) -> tuple[str, str]:
    """(field name, or '' for a rule across fields; the message a user reads) of one pydantic error."""
    where = str(problem["loc"][0]) if problem["loc"] else ""
    error = problem.get("ctx", {}).get("error")
    # A validator's own ValueError reads better without pydantic's "Value error, " in front.
    message = str(error) if problem["type"] == "value_error" and error is not None else problem["msg"]
    if where and where not in model.model_fields:
        return "", f"{where}: {message}"
    return where, message


def field_title(model: type[BaseModel], name: str) -> str:
    return model.model_fields[name].title or name


class MessageArea(QScrollArea):
    """The section's messages, one a line, in red; always the same height, empty or not."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.label.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        self.label.setStyleSheet(f"color: {ERROR_COLOR};")
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.label.setContentsMargins(8, 2, 8, 2)
        self.setWidget(self.label)
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        margins = self.label.contentsMargins()
        self.setFixedHeight(MESSAGE_LINES * self.fontMetrics().lineSpacing() + margins.top() + margins.bottom())

    def show_lines(self, lines: list[str]) -> None:
        self.label.setText("\n".join(lines))

    def text(self) -> str:
        return self.label.text()


def mark_label(label: QLabel, invalid: bool) -> None:
    # Only the colour changes: a bold or larger font would widen the label column.
    label.setStyleSheet(f"color: {ERROR_COLOR};" if invalid else "")
