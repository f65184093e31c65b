"""The Runs panel: every run directory under the runs folder, refreshed every 2 s.

One row per run: name (with a tick box: tick two or more to compare them), status, steps, final
loss, modes and date, in that order so that the first four fit the dock's width. An unreadable run
says why in its row. Open (or double-click), Resume, Rename… and Delete… act on the selected row;
the panel asks before deleting and the engine refuses to rename or delete a run that is still
being written.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Callable

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from geogui.gui.plots.board import _mode_label
from geogui.paths import runs_dir
from geogui.rundir.catalog import RunInfo, delete_run, list_runs, rename_run
from geogui.rundir.layout import RunLogError
from geogui.rundir.meta import RunStatus

REFRESH_MS = 2000
NAME_MIN_WIDTH = 150
NAME_MAX_SHARE = 0.8  # of the panel's width: the status stays in view beside a long name
RENAME_MIN_CHARS = 48  # the rename field shows a name this long whole
COLUMNS = ("Run", "Status", "Steps", "Final loss", "Modes", "Date")
NAME, STATUS, STEPS, LOSS, MODES, DATE = range(len(COLUMNS))
PATH_ROLE = Qt.ItemDataRole.UserRole
STATUS_COLORS = {RunStatus.RUNNING: "#2e7d32", RunStatus.CRASHED: "#c62828", RunStatus.FAILED: "#c62828",
                 RunStatus.UNREADABLE: "#b26a00"}


def _row_texts(run: RunInfo) -> dict[int, str]:
    if run.status is RunStatus.UNREADABLE:
        # The engine's reason starts with the full path of the file; the row names the file only.
        why = (run.problem or "").replace(str(run.path) + "/", "")
        return {NAME: run.name, STATUS: run.status.value, STEPS: "", LOSS: "", MODES: why, DATE: run.date}
    loss = "" if run.last_loss is None or not math.isfinite(run.last_loss) else f"{run.last_loss:.4f}"
    return {NAME: run.name, STATUS: run.status.value, STEPS: str(run.steps), LOSS: loss,
            MODES: " → ".join(_mode_label(m) for m in run.modes), DATE: run.date}


class RunsPanel(QWidget):
    open_requested = Signal(object)  # Path
    resume_requested = Signal(object)  # Path
    ticked_changed = Signal(list)  # [Path], in list order
    renamed = Signal(object, object)  # old Path, new Path
    deleted = Signal(object)  # Path
    refreshed = Signal()
    message = Signal(str)

    def __init__(self, root: Callable[[], Path] = runs_dir, refresh_ms: int = REFRESH_MS,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._root = root
        self._runs: dict[Path, RunInfo] = {}
        self._items: dict[Path, QTreeWidgetItem] = {}
        self.protected: set[Path] = set()  # the app's own live run: not renamed or deleted from here

        self.tree = QTreeWidget()
        self.tree.setColumnCount(len(COLUMNS))
        self.tree.setHeaderLabels(list(COLUMNS))
        self.tree.setRootIsDecorated(False)
        self.tree.setUniformRowHeights(True)
        self.tree.setAlternatingRowColors(True)
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        # A run's name is "<date>-<time>-<mode>-<suffix>": cut in the middle, the mode and the suffix
        # that tell runs of one day apart stay readable (the date has its own column).
        self.tree.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        header = self.tree.header()
        header.setSectionResizeMode(NAME, QHeaderView.ResizeMode.Interactive)
        header.resizeSection(NAME, NAME_MIN_WIDTH)
        self._name_width_chosen = False  # once the user drags the column's edge, it keeps their width
        self._resizing_name = False
        header.sectionResized.connect(self._on_section_resized)
        for column in (STATUS, STEPS, LOSS, MODES, DATE):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
        self.tree.itemChanged.connect(self._on_item_changed)
        self.tree.itemDoubleClicked.connect(lambda item, _column: self.open_requested.emit(item.data(NAME, PATH_ROLE)))
        self.tree.itemSelectionChanged.connect(self._update_buttons)

        self.open_button = QPushButton("Open")
        self.open_button.setToolTip("Show this run's plots (a run still being written is followed live)")
        self.resume_button = QPushButton("Resume")
        self.resume_button.setToolTip("Continue a stopped or crashed run from its latest checkpoint, in the "
                                      "same run directory")
        self.rename_button = QPushButton("Rename…")
        self.delete_button = QPushButton("Delete…")
        self.open_button.clicked.connect(lambda: self._emit_for_selected(self.open_requested))
        self.resume_button.clicked.connect(lambda: self._emit_for_selected(self.resume_requested))
        self.rename_button.clicked.connect(self.ask_rename)
        self.delete_button.clicked.connect(self.ask_delete)
        buttons = QHBoxLayout()
        for button in (self.open_button, self.resume_button, self.rename_button, self.delete_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        hint = QLabel("Tick two or more runs to overlay them on every plot.")
        hint.setStyleSheet("color: #606060;")

        column = QVBoxLayout(self)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(self.tree, 1)
        column.addLayout(buttons)
        column.addWidget(hint)

        self.timer = QTimer(self)
        self.timer.setInterval(refresh_ms)
        self.timer.timeout.connect(self.refresh)
        self.timer.start()
        self.refresh()

    # -- reading ----------------------------------------------------------------------------------
    def refresh(self) -> None:
        """Re-read the runs folder; rows are updated in place, so ticks and the selection stay."""
        runs = list_runs(self._root())
        if [self._runs.get(run.path) for run in runs] == runs and len(runs) == len(self._runs):
            self.refreshed.emit()
            return
        ticked_before = self.ticked()
        selected = self.selected_path()
        self.tree.blockSignals(True)
        fresh = {run.path for run in runs}
        for path in [p for p in self._items if p not in fresh]:
            self.tree.takeTopLevelItem(self.tree.indexOfTopLevelItem(self._items.pop(path)))
        for index, run in enumerate(runs):
            item = self._items.get(run.path)
            if item is None:
                item = QTreeWidgetItem()
                item.setData(NAME, PATH_ROLE, run.path)
                item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
                item.setCheckState(NAME, Qt.CheckState.Unchecked)
                self._items[run.path] = item
            if self.tree.indexOfTopLevelItem(item) != index:
                if self.tree.indexOfTopLevelItem(item) >= 0:
                    self.tree.takeTopLevelItem(self.tree.indexOfTopLevelItem(item))
                self.tree.insertTopLevelItem(index, item)
            self._fill(item, run)
        self._runs = {run.path: run for run in runs}
        self.tree.blockSignals(False)
        if selected in self._items:
            self.select(selected)
        self._fit_name_column()
        self._update_buttons()
        if self.ticked() != ticked_before:
            self.ticked_changed.emit(self.ticked())
        self.refreshed.emit()

    def _fit_name_column(self) -> None:
        """Wide enough for the longest name, up to NAME_MAX_SHARE of the panel (longer names are cut
        in the middle and shown whole in their tooltip)."""
        if self._name_width_chosen or not self._items:
            return
        wanted = self.tree.sizeHintForColumn(NAME) + self.tree.indentation() // 2
        most = max(NAME_MIN_WIDTH, round(self.width() * NAME_MAX_SHARE))  # the tree fills the panel
        self._resizing_name = True
        try:
            self.tree.header().resizeSection(NAME, max(NAME_MIN_WIDTH, min(wanted, most)))
        finally:
            self._resizing_name = False

    def _on_section_resized(self, column: int, _old: int, _new: int) -> None:
        if column == NAME and not self._resizing_name and self.isVisible():
            self._name_width_chosen = True

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._fit_name_column()

    def _fill(self, item: QTreeWidgetItem, run: RunInfo) -> None:
        texts = _row_texts(run)
        tooltip = f"{run.name}\n{run.problem or run.path}"
        for column, text in texts.items():
            item.setText(column, text)
            item.setToolTip(column, tooltip)
        for column in (STEPS, LOSS):
            item.setTextAlignment(column, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        color = STATUS_COLORS.get(run.status)
        item.setData(STATUS, Qt.ItemDataRole.ForegroundRole, None if color is None else QBrush(QColor(color)))

    def runs(self) -> list[RunInfo]:
        return list(self._runs.values())

    def info(self, path: Path) -> RunInfo | None:
        return self._runs.get(Path(path))

    def row(self, path: Path) -> dict[str, str]:
        """The row's texts by column title."""
        item = self._items[Path(path)]
        return {title: item.text(column) for column, title in enumerate(COLUMNS)}

    # -- selection and ticks ----------------------------------------------------------------------
    def selected_path(self) -> Path | None:
        items = self.tree.selectedItems()
        return items[0].data(NAME, PATH_ROLE) if items else None

    def select(self, path: Path) -> None:
        item = self._items.get(Path(path))
        if item is not None:
            self.tree.setCurrentItem(item)

    def ticked(self) -> list[Path]:
        items = [self.tree.topLevelItem(i) for i in range(self.tree.topLevelItemCount())]
        return [item.data(NAME, PATH_ROLE) for item in items if item.checkState(NAME) == Qt.CheckState.Checked]

    def set_ticked(self, path: Path, ticked: bool = True) -> None:
        item = self._items[Path(path)]
        item.setCheckState(NAME, Qt.CheckState.Checked if ticked else Qt.CheckState.Unchecked)  # emits

    def _on_item_changed(self, _item: QTreeWidgetItem, column: int) -> None:
        if column == NAME:
            self.ticked_changed.emit(self.ticked())

    def _emit_for_selected(self, signal) -> None:
        path = self.selected_path()
        if path is not None:
            signal.emit(path)

    def _update_buttons(self) -> None:
        path = self.selected_path()
        run = self._runs.get(path) if path is not None else None
        self.open_button.setEnabled(run is not None)
        self.resume_button.setEnabled(run is not None and run.status.continuable and path not in self.protected)
        editable = run is not None and run.status is not RunStatus.RUNNING and path not in self.protected
        self.rename_button.setEnabled(editable)
        self.delete_button.setEnabled(editable)

    # -- rename and delete ------------------------------------------------------------------------
    def ask_rename(self) -> None:
        path = self.selected_path()
        if path is None:
            return
        name = ask_new_name(self, path.name)
        if name is not None and name.strip() and name.strip() != path.name:
            self.rename(path, name)

    def rename(self, path: Path, new_name: str) -> Path | None:
        path = Path(path)
        if path in self.protected:
            self.message.emit(f"{path.name} is being trained; rename it when it has ended")
            return None
        try:
            target = rename_run(path, new_name)
        except (RunLogError, OSError) as exc:
            self.message.emit(f"Not renamed: {exc}")
            return None
        item = self._items.pop(path, None)
        if item is not None:
            item.setData(NAME, PATH_ROLE, target)
            self._items[target] = item
            self._runs.pop(path, None)
        self.renamed.emit(path, target)
        self.refresh()
        self.select(target)
        return target

    def ask_delete(self) -> None:
        path = self.selected_path()
        if path is None:
            return
        answer = QMessageBox.question(self, "Delete run",
                                      f"Delete the run “{path.name}” and all its files?\n{path}",
                                      QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel,
                                      QMessageBox.StandardButton.Cancel)
        if answer == QMessageBox.StandardButton.Yes:
            self.delete(path)

    def delete(self, path: Path) -> bool:
        path = Path(path)
        if path in self.protected:
            self.message.emit(f"{path.name} is being trained; delete it when it has ended")
            return False
        try:
            delete_run(path)
        except (RunLogError, OSError) as exc:
            self.message.emit(f"Not deleted: {exc}")
            return False
        self.deleted.emit(path)
        self.refresh()
        return True


def ask_new_name(parent: QWidget, name: str) -> str | None:
    """The new name typed for the run `name`, or None when cancelled. The field is wide enough to show
    a whole run name (QInputDialog.getText's is a third of one)."""
    dialog = QInputDialog(parent)
    dialog.setWindowTitle("Rename run")
    dialog.setLabelText("New name:")
    dialog.setTextEchoMode(QLineEdit.EchoMode.Normal)
    dialog.setTextValue(name)
    metrics = dialog.fontMetrics()
    text_width = max(metrics.horizontalAdvance(name), metrics.averageCharWidth() * RENAME_MIN_CHARS)
    field = dialog.findChild(QLineEdit)
    if field is not None:
        field.setMinimumWidth(text_width + 4 * metrics.averageCharWidth())  # room for the frame and cursor
    return dialog.textValue() if dialog.exec() == QInputDialog.DialogCode.Accepted else None
