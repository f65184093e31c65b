"""The two dialogs of Run → Compare Modes…: the budget to compare at, and the summary table.

Neither runs a nested event loop: training and plotting go on behind them. The table is modeless, so the
overlaid plots stay in reach while it is open.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QGuiApplication, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QButtonGroup,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QLabel,
    QPushButton,
    QRadioButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from geogui.rundir.comparison_summary import ComparisonSummary
from geogui.rundir.mode_comparison import COMPARED_MODES, MAX_SECONDS, MAX_STEPS, ComparisonBudget

DEFAULT_SECONDS = 120.0
ABOUT = ("Trains {modes} one after another, with the Settings panel's settings, from the same initial "
         "weights, seed and batch order. The three runs are ticked in the Runs panel, so the plots overlay "
         "them, and a table compares speed and held-out loss at equal steps and at equal wall time.")


class CompareModesDialog(QDialog):
    chosen = Signal(object)  # ComparisonBudget

    def __init__(self, steps: int, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Compare Modes")
        about = QLabel(ABOUT.format(modes=", ".join(mode.value for mode in COMPARED_MODES)))
        about.setWordWrap(True)
        self.equal_steps = QRadioButton("Equal steps")
        self.equal_time = QRadioButton("Equal wall time")
        group = QButtonGroup(self)
        for button in (self.equal_steps, self.equal_time):
            group.addButton(button)
        self.equal_steps.setChecked(True)
        self.steps = QSpinBox()
        self.steps.setRange(1, MAX_STEPS)
        self.steps.setValue(steps)
        self.steps.setToolTip("Steps each mode trains; with equal wall time, the most it may train")
        self.seconds = QDoubleSpinBox()
        self.seconds.setRange(1.0, MAX_SECONDS)
        self.seconds.setDecimals(0)
        self.seconds.setSuffix(" s")
        self.seconds.setValue(DEFAULT_SECONDS)
        self.seconds.setToolTip("Wall time each mode trains, its start-up included")
        form = QFormLayout()
        form.addRow(self.equal_steps)
        form.addRow(self.equal_time)
        form.addRow("Steps per mode:", self.steps)
        form.addRow("Seconds per mode:", self.seconds)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.start_button = buttons.addButton("Start Comparison", QDialogButtonBox.ButtonRole.AcceptRole)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        column = QVBoxLayout(self)
        column.addWidget(about)
        column.addLayout(form)
        column.addWidget(buttons)
        self.equal_time.toggled.connect(self._show_kind)
        self._show_kind()

    def _show_kind(self) -> None:
        self.seconds.setEnabled(self.equal_time.isChecked())

    def budget(self) -> ComparisonBudget:
        if self.equal_time.isChecked():
            return ComparisonBudget(kind="wall_time", seconds=self.seconds.value(), steps=self.steps.value())
        return ComparisonBudget(kind="steps", steps=self.steps.value())

    def accept(self) -> None:
        budget = self.budget()
        super().accept()
        self.chosen.emit(budget)


class ComparisonTableDialog(QDialog):
    """The summary, one row per mode; Copy puts the Markdown table on the clipboard, Ctrl+C the
    selected cells (tab-separated, for a spreadsheet)."""

    def __init__(self, summary: ComparisonSummary, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Mode Comparison")
        self.summary = summary
        headers, rows = summary.headers(), summary.rows()
        self.table = QTableWidget(len(rows), len(headers))
        self.table.setHorizontalHeaderLabels(headers)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        for r, row in enumerate(rows):
            for c, text in enumerate(row):
                item = QTableWidgetItem(text)
                if c not in (0, len(row) - 1):
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(r, c, item)
        self.table.resizeColumnsToContents()
        note = QLabel("Speed leaves out each run's first step (its warm-up). Equal wall time: each run's last "
                      "evaluation after a step begun within the shortest run's wall time (a run stopped at "
                      "its budget is evaluated where it stopped).")
        note.setWordWrap(True)
        copy = QPushButton("Copy as Markdown")
        copy.clicked.connect(self.copy_markdown)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.addButton(copy, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.rejected.connect(self.reject)
        column = QVBoxLayout(self)
        column.addWidget(self.table)
        column.addWidget(note)
        column.addWidget(buttons)
        width = self.table.horizontalHeader().length() + self.table.verticalHeader().width() + 48
        self.resize(min(width, 1400), 260)

    def copy_markdown(self) -> None:
        QGuiApplication.clipboard().setText(self.summary.to_markdown())

    def keyPressEvent(self, event) -> None:
        if event.matches(QKeySequence.StandardKey.Copy) and self.table.selectedRanges():
            cells = sorted((item.row(), item.column(), item.text()) for item in self.table.selectedItems())
            lines: dict[int, list[str]] = {}
            for row, _column, text in cells:
                lines.setdefault(row, []).append(text)
            QGuiApplication.clipboard().setText("\n".join("\t".join(texts) for texts in lines.values()))
            return
        super().keyPressEvent(event)
