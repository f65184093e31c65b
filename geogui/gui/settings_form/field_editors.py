"""One editor widget per pydantic field, chosen from the field's annotation.

Editors hand pydantic the *raw* value (the text the user typed, the item they picked) and never
check it themselves: pydantic is the only validator, so its message is what the user sees.
"""

from __future__ import annotations

import types
import typing
from abc import ABC, abstractmethod
from enum import Enum
from pathlib import Path
from typing import Any, Callable, Literal

import annotated_types
from pydantic.fields import FieldInfo
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (
    QCheckBox, QComboBox, QFileDialog, QHBoxLayout, QLineEdit, QStyle, QToolButton, QWidget,
)


class FieldEditor(ABC):
    """The widget for one field plus the two conversions: model value -> widget, widget -> raw value."""

    def __init__(self, widget: QWidget) -> None:
        self.widget = widget
        self.tooltip = ""  # the field's description and range; an error's message goes above it

    def set_tooltip(self, tooltip: str) -> None:
        self.tooltip = tooltip
        self.widget.setToolTip(tooltip)

    def show_error(self, message: str) -> None:
        """Say what is wrong ('' when nothing is) without changing the editor's size."""
        self.widget.setToolTip(f"{message}\n\n{self.tooltip}".strip() if message else self.tooltip)

    @abstractmethod
    def raw_value(self) -> Any: ...

    @abstractmethod
    def set_value(self, value: Any) -> None: ...

    @abstractmethod
    def on_change(self, callback: Callable[[], None]) -> None: ...


class ChoiceEditor(FieldEditor):
    """Enum or Literal: a combo box of the allowed values."""

    def __init__(self, choices: list[tuple[str, Any]]) -> None:
        combo = QComboBox()
        combo.addItems([label for label, _value in choices])
        super().__init__(combo)
        self.combo = combo
        # Values stay in Python: Qt item data would turn a str-based Enum member into a plain str.
        self.values = [value for _label, value in choices]

    def raw_value(self) -> Any:
        return self.values[self.combo.currentIndex()]

    def set_value(self, value: Any) -> None:
        self.combo.setCurrentIndex(self.values.index(value))

    def on_change(self, callback: Callable[[], None]) -> None:
        self.combo.currentIndexChanged.connect(lambda _index: callback())


class BoolEditor(FieldEditor):
    def __init__(self) -> None:
        super().__init__(QCheckBox())
        self.check: QCheckBox = self.widget  # type: ignore[assignment]

    def raw_value(self) -> bool:
        return self.check.isChecked()

    def set_value(self, value: Any) -> None:
        self.check.setChecked(bool(value))

    def on_change(self, callback: Callable[[], None]) -> None:
        self.check.toggled.connect(lambda _checked: callback())


class TextEditor(FieldEditor):
    """Numbers and strings: a line edit, so that any value can be typed and pydantic can refuse it."""

    def __init__(self, placeholder: str = "") -> None:
        line = QLineEdit()
        line.setPlaceholderText(placeholder)
        line.setClearButtonEnabled(False)
        super().__init__(line)
        self.line = line
        self._warning: QAction | None = None

    def raw_value(self) -> str:
        return self.line.text().strip()

    def set_value(self, value: Any) -> None:
        self.line.setText(format_value(value))

    def on_change(self, callback: Callable[[], None]) -> None:
        self.line.textChanged.connect(lambda _text: callback())

    def show_error(self, message: str) -> None:
        super().show_error(message)
        # A sign inside the field, where the text ends: it takes no room from the form.
        if message and self._warning is None:
            icon = self.line.style().standardIcon(QStyle.StandardPixmap.SP_MessageBoxWarning)
            self._warning = self.line.addAction(icon, QLineEdit.ActionPosition.TrailingPosition)
        elif not message and self._warning is not None:
            self.line.removeAction(self._warning)
            self._warning = None
        if self._warning is not None:
            self._warning.setToolTip(message)


class PathEditor(TextEditor):
    """A file path: line edit plus a browse button."""

    def __init__(self, title: str, placeholder: str) -> None:
        super().__init__(placeholder)
        self.browse = QToolButton()
        self.browse.setText("Browse…")
        self.browse.setToolTip(f"Choose the {title.lower()}")
        self.browse.clicked.connect(self._browse)
        box = QWidget()
        row = QHBoxLayout(box)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.line, 1)
        row.addWidget(self.browse)
        self.widget = box
        self._title = title

    def _browse(self) -> None:
        start = str(Path(self.raw_value()).expanduser().parent) if self.raw_value() else str(Path.home())
        chosen, _filter = QFileDialog.getOpenFileName(
            self.widget, self._title, start, "Training data (*.txt *.json *.jsonl);;All files (*)"
        )
        if chosen:
            self.line.setText(chosen)


def editor_for(info: FieldInfo) -> FieldEditor:
    """Pick the editor for a field from its annotation; bounds and description go into the tooltip."""
    annotation = _without_none(info.annotation)
    title = info.title or ""
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        editor: FieldEditor = ChoiceEditor([(getattr(m, "label", str(m.value)), m) for m in annotation])
    elif typing.get_origin(annotation) is Literal:
        editor = ChoiceEditor([(str(value), value) for value in typing.get_args(annotation)])
    elif annotation is bool:
        editor = BoolEditor()
    elif annotation is Path:
        editor = PathEditor(title, "empty: the default")
    else:
        editor = TextEditor(bounds_text(info))
    tooltip = info.description or ""
    if bounds_text(info):
        tooltip += f"\nAllowed: {bounds_text(info)}"
    editor.set_tooltip(tooltip.strip())
    return editor


def bounds_text(info: FieldInfo) -> str:
    """'1 … 4096', '> 0 … 1': the field's numeric range, read from its pydantic constraints."""
    lower = upper = ""
    for constraint in info.metadata:
        if isinstance(constraint, annotated_types.Ge):
            lower = f"{format_value(constraint.ge)}"
        elif isinstance(constraint, annotated_types.Gt):
            lower = f"> {format_value(constraint.gt)}"
        elif isinstance(constraint, annotated_types.Le):
            upper = f"{format_value(constraint.le)}"
        elif isinstance(constraint, annotated_types.Lt):
            upper = f"< {format_value(constraint.lt)}"
    if lower and upper:
        return f"{lower} … {upper}"
    if lower:
        return f"≥ {lower}" if not lower.startswith(">") else lower
    if upper:
        return f"≤ {upper}" if not upper.startswith("<") else upper
    return ""


def format_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, float):
        return repr(value)  # shortest text that reads back as the same float
    return str(value)


def _without_none(annotation: Any) -> Any:
    # `Path | None` edits like `Path`: an empty field is the None.
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation
