"""Named presets in the settings dock: pick one to load it, save the current settings under a name,
delete one. The files themselves are handled by `geogui.settings.store`."""

from __future__ import annotations

from typing import Callable

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QInputDialog, QPushButton, QWidget

from geogui.settings import store as settings_store
from geogui.settings import Settings, SettingsError


class PresetBar(QWidget):
    preset_loaded = Signal(object)  # Settings
    message = Signal(str)  # one line for the status bar

    def __init__(self, current_settings: Callable[[], Settings | None], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._current_settings = current_settings
        self.combo = QComboBox()
        self.combo.setPlaceholderText("Load preset…")
        self.combo.setToolTip("Load a saved preset into the panels")
        self.combo.activated.connect(lambda index: self.load(self.combo.itemText(index)))
        self.save_button = QPushButton("Save…")
        self.save_button.setToolTip("Save the current settings as a named preset")
        self.save_button.clicked.connect(self.ask_and_save)
        self.delete_button = QPushButton("Delete")
        self.delete_button.setToolTip("Delete the selected preset")
        self.delete_button.clicked.connect(lambda: self.delete(self.combo.currentText()))
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.combo, 1)
        row.addWidget(self.save_button)
        row.addWidget(self.delete_button)
        self.refresh()

    def refresh(self, select: str | None = None) -> None:
        self.combo.clear()
        self.combo.addItems(settings_store.list_presets())
        self.combo.setCurrentIndex(self.combo.findText(select) if select else -1)
        self.delete_button.setEnabled(self.combo.count() > 0)

    def ask_and_save(self) -> None:
        name, accepted = QInputDialog.getText(self, "Save preset", "Preset name:", text=self.combo.currentText())
        if accepted and name.strip():
            self.save(name)

    def save(self, name: str) -> bool:
        settings = self._current_settings()
        if settings is None:
            self.message.emit("Fix the settings marked in red before saving a preset")
            return False
        try:
            settings_store.save_preset(name, settings)
        except (SettingsError, OSError) as exc:
            self.message.emit(f"Preset not saved: {exc}")
            return False
        self.refresh(select=name.strip())
        self.message.emit(f"Saved preset “{name.strip()}”")
        return True

    def load(self, name: str) -> Settings | None:
        try:
            settings = settings_store.load_preset(name)
        except SettingsError as exc:
            self.message.emit(f"Preset not loaded: {exc}")
            return None
        self.preset_loaded.emit(settings)
        self.message.emit(f"Loaded preset “{name}”")
        return settings

    def delete(self, name: str) -> None:
        if not name:
            return
        settings_store.delete_preset(name)
        self.refresh()
        self.message.emit(f"Deleted preset “{name}”")
