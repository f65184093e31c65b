"""The settings forms are generated from the pydantic models and refuse what pydantic refuses."""

from __future__ import annotations

import pytest
from PySide6.QtWidgets import QCheckBox, QComboBox, QLabel, QLineEdit, QToolButton

from geogui.gui.main_window import MainWindow
from geogui.gui.settings_form.error_display import ERROR_COLOR
from geogui.gui.settings_form.panel import SettingsPanel, section_fields
from geogui.settings import Mode, Settings


@pytest.fixture
def window(qtbot, tiny):
    window = MainWindow(tiny, persist=False)
    qtbot.addWidget(window)
    return window


def test_every_field_has_a_generated_editor_labelled_from_the_schema(qtbot):
    panel = SettingsPanel(Settings())
    qtbot.addWidget(panel)
    assert [panel.tabText(i) for i in range(panel.count())] == ["Run", "Model", "Data", "Device", "Sampling"]
    for section, model in section_fields().items():
        form = panel.forms[section]
        assert set(form.editors) == set(model.model_fields)
        for name, info in model.model_fields.items():
            widget = form.editors[name].widget
            assert info.description in widget.toolTip()
            label = form.layout().labelForField(widget)
            assert isinstance(label, QLabel) and label.text() == info.title
    assert "Allowed: 1 … 4096" in panel.editor("run", "batch_size").widget.toolTip()
    assert panel.editor("run", "batch_size").line.placeholderText() == "1 … 4096"
    mode = panel.editor("run", "mode").widget
    assert isinstance(mode, QComboBox) and [mode.itemText(i) for i in range(mode.count())] == [m.label for m in Mode]
    device = panel.editor("device", "device").widget
    assert isinstance(device, QComboBox) and device.count() == 4
    data_path = panel.editor("data", "path").widget
    assert data_path.findChild(QLineEdit) and data_path.findChild(QToolButton).text() == "Browse…"
    assert isinstance(panel.editor("run", "steps").widget, QLineEdit)
    compile_step = panel.editor("device", "compile_step").widget
    assert panel.findChildren(QCheckBox) == [compile_step] and not compile_step.isChecked()
    precision = panel.editor("device", "precision").widget
    assert isinstance(precision, QComboBox) and [precision.itemText(i) for i in range(precision.count())] == [
        "fp32", "bf16"] and precision.currentText() == "fp32"


@pytest.mark.parametrize(
    ("section", "field", "text", "message"),
    [
        ("run", "penalty_weight", "-1", "greater than or equal to 0"),
        ("run", "penalty_weight", "nan", "finite number"),
        ("run", "penalty_weight", "abc", "valid number"),
        ("run", "batch_size", "0", "greater than or equal to 1"),
        ("run", "batch_size", "2.5", "valid integer"),
        ("run", "learning_rate", "0", "greater than 0"),
        ("data", "path", "/no/such/file.txt", "data file not found"),
    ],
)
def test_an_invalid_value_shows_its_message_and_disables_start(window, section, field, text, message):
    start = window.toolbar.start_action
    assert start.isEnabled()
    editor = window.panel.editor(section, field)
    original = editor.raw_value()
    editor.line.setText(text)
    shown = window.panel.errors()[f"{section}.{field}"]
    assert message in shown
    form = window.panel.forms[section]
    title = form.model.model_fields[field].title
    assert f"{title}: {shown}" in form.message_area.text()
    assert shown in editor.widget.toolTip() and ERROR_COLOR in form.labels[field].styleSheet()
    assert not start.isEnabled()
    assert not window.start_run()
    editor.line.setText(original)
    assert start.isEnabled() and not window.panel.errors() and not form.message_area.text()
    assert shown not in editor.widget.toolTip() and not form.labels[field].styleSheet()


def test_a_rule_across_fields_is_shown_under_its_section(window):
    window.panel.editor("model", "d_model").line.setText("33")
    message = window.panel.errors()["model"]
    assert message == "Model width (33) must be divisible by Attention heads (2)"
    assert window.panel.forms["model"].message_area.text() == message
    assert window.panel.tabText(1) == "Model ⚠"
    assert not window.toolbar.start_action.isEnabled()
    window.panel.editor("model", "d_model").line.setText("64")
    assert window.toolbar.start_action.isEnabled() and window.panel.tabText(1) == "Model"


def test_toolbar_mode_and_penalty_mirror_the_run_panel(window):
    window.toolbar.mode_actions[Mode.STANDARD].trigger()
    assert window.panel.editor("run", "mode").raw_value() is Mode.STANDARD
    window.panel.editor("run", "mode").set_value(Mode.GEOMETRIC)
    assert window.run_actions.checked_mode() is Mode.GEOMETRIC
    window.toolbar.penalty_edit.setText("0.05")
    window.toolbar.penalty_edit.editingFinished.emit()
    assert window.panel.settings().run.penalty_weight == 0.05
    window.toolbar.penalty_edit.setText("-3")
    window.toolbar.penalty_edit.editingFinished.emit()
    assert "greater than or equal to 0" in window.panel.errors()["run.penalty_weight"]
    assert "greater than or equal to 0" in window.toolbar.penalty_edit.toolTip()
    assert not window.toolbar.start_action.isEnabled()
    window.panel.editor("run", "penalty_weight").line.setText("0.2")
    assert window.toolbar.penalty_edit.text() == "0.2" and window.toolbar.start_action.isEnabled()


@pytest.mark.parametrize(("field", "text"), [("d_model", "33"), ("rotation_dimensions", "5"), ("top_k", "3")])
def test_a_rule_across_fields_names_them_by_their_labels(qtbot, field, text):
    panel = SettingsPanel(Settings())
    qtbot.addWidget(panel)
    panel.editor("model", "num_experts").line.setText("2")
    panel.editor("model", field).line.setText(text)
    shown = panel.errors()["model"]
    titles = [info.title for info in panel.forms["model"].model.model_fields.values()]
    assert any(title in shown for title in titles)
    for name in panel.forms["model"].editors:
        assert name not in shown
    assert "Value error" not in shown


def test_an_error_does_not_move_the_fields_below_it(qtbot):
    panel = SettingsPanel(Settings())
    qtbot.addWidget(panel)
    panel.resize(340, 700)
    panel.show()
    qtbot.waitExposed(panel)
    below = panel.editor("run", "steps").widget
    position = below.mapTo(panel, below.rect().topLeft())
    height = panel.editor("run", "penalty_weight").widget.height()
    for text, invalid in (("-1", True), ("abc", True), ("0.01", False)):
        panel.editor("run", "penalty_weight").line.setText(text)
        assert ("run.penalty_weight" in panel.errors()) == invalid
        qtbot.wait(0)  # let the posted layout requests run
        assert below.mapTo(panel, below.rect().topLeft()) == position
        assert panel.editor("run", "penalty_weight").widget.height() == height
