"""What to sample: the prompt and the sampling settings (temperature, top-k, sample length), their
editors built from `SamplingSettings` as the Settings panel builds its own."""

from __future__ import annotations

from PySide6.QtWidgets import QFormLayout, QHBoxLayout, QLabel, QPlainTextEdit, QVBoxLayout, QWidget

from geogui.engine.sample_request import SampleRequest
from geogui.gui.settings_form.error_display import ERROR_COLOR
from geogui.gui.settings_form.field_editors import FieldEditor, editor_for
from geogui.settings import SamplingSettings

FIELDS = ("temperature", "top_k", "max_bytes")
PROMPT_PLACEHOLDER = "Empty: the first held-out question of the run's data, in the training format"


class RequestForm(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.prompt = QPlainTextEdit()
        self.prompt.setPlaceholderText(PROMPT_PLACEHOLDER)
        self.prompt.setToolTip("The text the model continues. A question in the training format "
                               "(\"Q: …\\nReasoning:\\n\") has its answer checked.")
        self.prompt.setFixedHeight(self.prompt.fontMetrics().lineSpacing() * 4 + 12)
        self._expected: tuple[str, str | None] | None = None  # a held-out prompt shown, and its answer
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        prompt_column = QVBoxLayout()
        prompt_column.addWidget(QLabel("Prompt"))
        prompt_column.addWidget(self.prompt)
        row.addLayout(prompt_column, 3)
        form = QFormLayout()
        row.addLayout(form, 1)
        self.editors: dict[str, FieldEditor] = {}
        for name in FIELDS:
            info = SamplingSettings.model_fields[name]
            editor = editor_for(info)
            label = QLabel(info.title or name)
            label.setToolTip(editor.widget.toolTip())
            label.setBuddy(editor.widget)
            form.addRow(label, editor.widget)
            self.editors[name] = editor
        self.error = QLabel()
        self.error.setStyleSheet(f"color: {ERROR_COLOR}")
        self.error.setWordWrap(True)
        self.error.hide()
        form.addRow(self.error)
        self.set_sampling(SamplingSettings())

    def set_sampling(self, sampling: SamplingSettings) -> None:
        for name, editor in self.editors.items():
            editor.set_value(getattr(sampling, name))

    def offer_prompt(self, prompt: str, expected: str | None) -> None:
        """Show a held-out question unless the user has written a prompt of their own."""
        if not self.prompt.toPlainText():
            self.prompt.setPlainText(prompt)
            self._expected = (prompt, expected)

    def request(self) -> SampleRequest | None:
        """The request as entered; None (with the reason shown) when a setting is out of range."""
        try:
            sampling = SamplingSettings.model_validate({name: e.raw_value() for name, e in self.editors.items()})
        except ValueError as exc:
            self.error.setText(_first_problem(exc))
            self.error.show()
            return None
        self.error.hide()
        prompt = self.prompt.toPlainText()
        expected = self._expected[1] if self._expected is not None and self._expected[0] == prompt else None
        return SampleRequest(prompt, sampling, expected)


def _first_problem(exc: ValueError) -> str:
    errors = getattr(exc, "errors", None)
    if not callable(errors):
        return str(exc)
    problem = errors()[0]
    where = ".".join(str(part) for part in problem.get("loc", ()))
    title = SamplingSettings.model_fields[where].title if where in SamplingSettings.model_fields else where
    return f"{title}: {problem.get('msg', '')}"
