"""Help → About: what this build is (versions, device) and where it keeps things (config and runs
folders, each with a button that opens it in the file manager).

Nothing here imports torch: its version comes from package metadata, and the device is what the
window learnt from the last run, so opening the box never puts torch on the GUI thread.
"""

from __future__ import annotations

import platform
from importlib import metadata
from pathlib import Path

from PySide6.QtCore import Qt, QUrl, qVersion
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from geogui import __version__
from geogui.gui.app_icon import app_icon

DESCRIPTION = ("Train a Mixture-of-Experts language model with Geometric Constrained Learning and watch "
               "what each training mode costs, live.")
ICON_PX = 64


def installed_version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed"


def component_versions() -> dict[str, str]:
    """What this build runs on, by component name."""
    import pyqtgraph
    import PySide6

    return {
        "geogui": __version__,
        "torch": installed_version("torch"),
        "Qt": f"{qVersion()} (PySide6 {PySide6.__version__})",
        "pyqtgraph": pyqtgraph.__version__,
        "numpy": installed_version("numpy"),
        "Python": platform.python_version(),
        "System": platform.platform(terse=True),
    }


def open_folder(path: Path) -> bool:
    """Show a folder in the platform's file manager (Finder on macOS)."""
    path.mkdir(parents=True, exist_ok=True)
    return QDesktopServices.openUrl(QUrl.fromLocalFile(str(path)))


class AboutDialog(QDialog):
    def __init__(self, device: str, config_dir: Path, runs_dir: Path, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("About geogui")
        self.versions = component_versions()
        self.device = device
        self.folders = {"Settings folder": Path(config_dir), "Runs folder": Path(runs_dir)}
        self.open_buttons: dict[str, QPushButton] = {}

        icon = QLabel()
        icon.setPixmap(app_icon().pixmap(ICON_PX, ICON_PX))
        title = QLabel(f"<b>geogui {__version__}</b><br>{DESCRIPTION}")
        title.setWordWrap(True)
        header = QHBoxLayout()
        header.addWidget(icon, 0, Qt.AlignmentFlag.AlignTop)
        header.addWidget(title, 1)

        form = QFormLayout()
        form.addRow("Device", self._selectable(device))
        for name, version in self.versions.items():
            if name != "geogui":
                form.addRow(name, self._selectable(version))
        for label, path in self.folders.items():
            form.addRow(label, self._folder_row(label, path))

        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)

        column = QVBoxLayout(self)
        column.addLayout(header)
        column.addLayout(form)
        column.addWidget(buttons)
        self.setMinimumWidth(520)

    def text(self) -> str:
        """Everything the box says, as plain lines (for a bug report, and for tests)."""
        lines = [f"geogui {__version__}", f"Device: {self.device}"]
        lines += [f"{name}: {version}" for name, version in self.versions.items() if name != "geogui"]
        lines += [f"{label}: {path}" for label, path in self.folders.items()]
        return "\n".join(lines)

    @staticmethod
    def _selectable(text: str) -> QLabel:
        label = QLabel(text)
        label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        label.setWordWrap(True)
        return label

    def _folder_row(self, label: str, path: Path) -> QWidget:
        row = QWidget()
        layout = QHBoxLayout(row)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self._selectable(str(path)), 1)
        button = QPushButton("Open")
        button.setToolTip(f"Show {path} in the file manager")
        button.clicked.connect(lambda: open_folder(path))
        layout.addWidget(button)
        self.open_buttons[label] = button
        return row
