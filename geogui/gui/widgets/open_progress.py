"""A progress bar with Cancel while a run directory is read, shown only when the read lasts.

Reading a long run's metrics.jsonl takes seconds (a cached one much less). The reader calls back
between chunks of ~0.1 s; each call moves the bar and lets the window process its events, so it
stays responsive, and Cancel ends the read at the next chunk (`geogui.rundir.columns.ReadCancelled`).
"""

from __future__ import annotations

from PySide6.QtCore import QCoreApplication, Qt
from PySide6.QtWidgets import QProgressDialog, QWidget

SHOW_AFTER_MS = 500  # a read shorter than this never shows the dialog
STEPS = 1000


class OpenProgress:
    def __init__(self, parent: QWidget, name: str) -> None:
        self.dialog = QProgressDialog(f"Opening {name}…", "Cancel", 0, STEPS, parent)
        self.dialog.setWindowTitle("Opening the run")
        self.dialog.setWindowModality(Qt.WindowModality.WindowModal)
        self.dialog.setMinimumDuration(SHOW_AFTER_MS)
        self.dialog.setAutoClose(False)
        self.dialog.setValue(0)

    def progress(self, done: int, total: int) -> None:
        self.dialog.setValue(min(STEPS - 1, int(STEPS * done / max(total, 1))))
        QCoreApplication.processEvents()

    def cancelled(self) -> bool:
        return self.dialog.wasCanceled()

    def close(self) -> None:
        self.dialog.reset()
        self.dialog.deleteLater()
