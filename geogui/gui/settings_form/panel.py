"""Settings forms generated from the pydantic models: one tab per section (Run, Model, Data, Device).

Nothing here knows a field by name. The labels are the fields' titles, tooltips their descriptions
and ranges, and every edit is validated by pydantic itself; its message, naming fields by their
labels, is listed under the section and the field is marked in place (`error_display`), a rule
across fields such as model width vs attention heads included. Settings that are each valid but
whose training step would not fit in memory are refused under the Model section, with the estimate
(`geogui.engine.memory_estimate`: arithmetic only, no torch on this thread).
"""

from __future__ import annotations

import types
import typing
from typing import Any

from pydantic import BaseModel, ValidationError
from PySide6.QtCore import Signal
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QFormLayout, QLabel, QLineEdit, QScrollArea, QTabWidget, QVBoxLayout, QWidget

from geogui.engine.memory_estimate import check_fits
from geogui.gui.settings_form.error_display import (
    ERROR_COLOR, MessageArea, field_title, mark_label, problem_message,
)
from geogui.gui.settings_form.field_editors import FieldEditor, TextEditor, editor_for
from geogui.settings import Settings

MEMORY_SECTION = "model"  # where a size that would not fit in memory is reported


def section_fields(model: type[BaseModel] = Settings) -> dict[str, type[BaseModel]]:
    """The nested models of `Settings` (run, model, data, device), in declaration order."""
    return {
        name: info.annotation for name, info in model.model_fields.items()
        if isinstance(info.annotation, type) and issubclass(info.annotation, BaseModel)
    }


class SectionForm(QWidget):
    """The form of one section model; `validated()` is the model instance, or None with errors shown.

    Its `message_area` (placed under the form's scroll area by the panel) lists the messages."""

    edited = Signal()

    def __init__(self, model: type[BaseModel], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = model
        self.editors: dict[str, FieldEditor] = {}
        self.labels: dict[str, QLabel] = {}
        self.field_errors: dict[str, str] = {}  # field name -> what is wrong with its value
        self.section_errors: list[str] = []  # rules across fields, and the memory check
        self.message_area = MessageArea()
        form = QFormLayout(self)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        for name, info in model.model_fields.items():
            editor = editor_for(info)
            label = QLabel(info.title or name)
            label.setToolTip(editor.widget.toolTip())
            label.setBuddy(editor.widget)
            form.addRow(label, editor.widget)
            editor.on_change(self.edited.emit)
            self.editors[name] = editor
            self.labels[name] = label

    def set_values(self, instance: BaseModel) -> None:
        for name, editor in self.editors.items():
            editor.set_value(getattr(instance, name))

    def raw_values(self) -> dict[str, Any]:
        return {name: editor.raw_value() for name, editor in self.editors.items()}

    def validated(self) -> BaseModel | None:
        """Validate the current values with pydantic and show (or clear) the messages."""
        self.field_errors, self.section_errors = {}, []
        try:
            return self.model.model_validate(self.raw_values())
        except ValidationError as exc:
            for problem in exc.errors():
                where, message = problem_message(self.model, problem)
                if where:
                    self.field_errors[where] = "\n".join(filter(None, (self.field_errors.get(where), message)))
                else:
                    self.section_errors.append(message)
            return None
        finally:
            self._show_errors()

    def add_section_error(self, message: str) -> None:
        self.section_errors.append(message)
        self._show_errors()

    def _show_errors(self) -> None:
        for name, editor in self.editors.items():
            message = self.field_errors.get(name, "")
            editor.show_error(message)
            mark_label(self.labels[name], bool(message))
        self.message_area.show_lines(
            [f"{field_title(self.model, name)}: {message}" for name, message in self.field_errors.items()]
            + self.section_errors
        )

    def errors(self) -> dict[str, str]:
        """Field name ('' for the section) -> the message shown now."""
        shown = dict(self.field_errors)
        if self.section_errors:
            shown[""] = "\n".join(self.section_errors)
        return shown


class SettingsPanel(QTabWidget):
    """All sections as tabs. `settings()` is a valid Settings or None; `validity_changed` follows it."""

    settings_edited = Signal()
    validity_changed = Signal(bool)

    def __init__(self, settings: Settings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.forms: dict[str, SectionForm] = {}
        self._titles: dict[str, str] = {}
        self._settings: Settings | None = None
        self._valid = True
        self._loading = False
        for name, model in section_fields().items():
            form = SectionForm(model)
            form.edited.connect(self._on_edited)
            scroll = QScrollArea()
            scroll.setWidgetResizable(True)
            scroll.setFrameShape(QScrollArea.Shape.NoFrame)
            scroll.setWidget(form)
            self._titles[name] = Settings.model_fields[name].title or name.title()
            self.addTab(_page(scroll, form.message_area), self._titles[name])
            self.forms[name] = form
        self.set_settings(settings)

    def settings(self) -> Settings | None:
        return self._settings

    def is_valid(self) -> bool:
        return self._settings is not None

    def set_settings(self, settings: Settings) -> None:
        self._loading = True
        try:
            for name, form in self.forms.items():
                form.set_values(getattr(settings, name))
        finally:
            self._loading = False
        self._revalidate()

    def text_fields(self) -> list[tuple[QLineEdit, bool]]:
        """Every line edit of the forms, and whether its field holds a number (the window's keys
        treat Space in those differently: `geogui.gui.field_keys`)."""
        fields = []
        for form in self.forms.values():
            for name, editor in form.editors.items():
                if isinstance(editor, TextEditor):
                    fields.append((editor.line, _takes_number(form.model.model_fields[name].annotation)))
        return fields

    def raw_values(self) -> dict[str, dict[str, Any]]:
        """What every field holds now, as typed (valid or not): `set_raw_values` puts it back."""
        return {name: form.raw_values() for name, form in self.forms.items()}

    def set_raw_values(self, values: dict[str, dict[str, Any]]) -> None:
        self._loading = True
        try:
            for section, fields in values.items():
                for field, value in fields.items():
                    self.editor(section, field).set_value(value)
        finally:
            self._loading = False
        self._revalidate()

    def title_of(self, section: str, field: str) -> str:
        """The field's label in the form, lower case as in a sentence ("penalty weight")."""
        info = self.forms[section].model.model_fields[field]
        title = info.title or field
        return title[0].lower() + title[1:] if title[1:2].islower() else title

    def editor(self, section: str, field: str) -> FieldEditor:
        return self.forms[section].editors[field]

    def set_raw(self, section: str, field: str, value: Any) -> None:
        """Put a value into a field as if typed there (the toolbar mirrors run.mode and penalty weight)."""
        self.editor(section, field).set_value(value)

    def errors(self) -> dict[str, str]:
        """'section.field' (or 'section') -> message, for every problem shown now."""
        return {
            f"{section}.{field}" if field else section: message
            for section, form in self.forms.items() for field, message in form.errors().items()
        }

    def _on_edited(self) -> None:
        if not self._loading:
            self._revalidate()

    def _revalidate(self) -> None:
        sections = {name: form.validated() for name, form in self.forms.items()}
        if all(section is not None for section in sections.values()):
            problem = check_fits(Settings(**sections))
            if problem:
                self.forms[MEMORY_SECTION].add_section_error(problem)
                sections[MEMORY_SECTION] = None
        for index, (name, section) in enumerate(sections.items()):
            self.setTabText(index, self._titles[name] + ("" if section is not None else " ⚠"))
            self.tabBar().setTabTextColor(index, QColor(ERROR_COLOR) if section is None else self._tab_color())
        if all(section is not None for section in sections.values()):
            current = self._settings or Settings()
            self._settings = Settings(schema_version=current.schema_version, **sections)
        else:
            self._settings = None
        self.settings_edited.emit()
        if self.is_valid() != self._valid:
            self._valid = self.is_valid()
            self.validity_changed.emit(self._valid)

    def _tab_color(self) -> QColor:
        return self.palette().color(QPalette.ColorRole.WindowText)


def _takes_number(annotation: Any) -> bool:
    kinds = typing.get_args(annotation) if typing.get_origin(annotation) in (typing.Union, types.UnionType) else (
        annotation,)
    kinds = [kind for kind in kinds if kind is not type(None)]
    return bool(kinds) and all(kind in (int, float) for kind in kinds)


def _page(scroll: QScrollArea, message_area: MessageArea) -> QWidget:
    page = QWidget()
    column = QVBoxLayout(page)
    column.setContentsMargins(0, 0, 0, 0)
    column.setSpacing(0)
    column.addWidget(scroll, 1)
    column.addWidget(message_area)
    return page
