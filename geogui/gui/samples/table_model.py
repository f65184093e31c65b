"""Every sample taken from the current run, one row each: step, mode, prompt, output and, for a
question in the training format, whether the answer is right."""

from __future__ import annotations

from PySide6.QtCore import QAbstractTableModel, QModelIndex, Qt

from geogui.engine.samples import SampleRecord
from geogui.gui.plots.mode_marks import mode_label

COLUMNS = ("Step", "Mode", "Prompt", "Output", "Answer")
ELIDE_AT = 80  # characters of a cell; the detail pane shows the whole text
RIGHT, WRONG = "✓", "✗"


def one_line(text: str, limit: int = ELIDE_AT) -> str:
    """A cell's text: line breaks shown as ⏎, cut with … past `limit` characters."""
    flat = text.replace("\n", "⏎")
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def verdict(right: bool | None) -> str:
    return "" if right is None else RIGHT if right else WRONG


class SamplesModel(QAbstractTableModel):
    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.records: list[SampleRecord] = []

    def rowCount(self, parent: QModelIndex = QModelIndex()) -> int:  # noqa: N802 - Qt's name
        return 0 if parent.isValid() else len(self.records)

    def columnCount(self, parent: QModelIndex = QModelIndex()) -> int:  # noqa: N802
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):  # noqa: N802
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section]
        return None

    def data(self, index: QModelIndex, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        record = self.records[index.row()]
        column = COLUMNS[index.column()]
        if role == Qt.ItemDataRole.DisplayRole:
            return self._cell(record, column)
        if role == Qt.ItemDataRole.ToolTipRole and column == "Answer" and record.right is not None:
            return f"expected {record.expected}" if record.expected else None
        if role == Qt.ItemDataRole.TextAlignmentRole and column in ("Step", "Answer"):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter) if column == "Step" \
                else int(Qt.AlignmentFlag.AlignCenter)
        return None

    @staticmethod
    def _cell(record: SampleRecord, column: str) -> str:
        if column == "Step":
            return f"{record.step:,}"
        if column == "Mode":
            return mode_label(record.mode)
        if column == "Prompt":
            return one_line(record.prompt)
        if column == "Output":
            return one_line(record.text)
        return verdict(record.right)

    def add(self, records: list[SampleRecord]) -> None:
        if not records:
            return
        first = len(self.records)
        self.beginInsertRows(QModelIndex(), first, first + len(records) - 1)
        self.records.extend(records)
        self.endInsertRows()

    def clear(self) -> None:
        self.beginResetModel()
        self.records = []
        self.endResetModel()
