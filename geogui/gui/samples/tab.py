"""The Samples tab: ask the model for a sample, and read every sample taken from the current run.

Generation never runs on the GUI thread. While a run trains here the request goes to its trainer,
which answers between two batches (at once when paused); otherwise the run's latest checkpoint is
sampled in a background thread (`CheckpointSampler`). Samples the run logged (its samples.jsonl, or
sent live during training through `add_samples`) join the same table.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QAbstractItemView, QHBoxLayout, QHeaderView, QLabel, QPushButton, QSplitter,
                               QTableView, QVBoxLayout, QWidget)

from geogui.engine.metrics import RunStarted
from geogui.engine.samples import SampleRecord
from geogui.gui.samples.checkpoint_sampler import CheckpointSampler
from geogui.gui.samples.detail import SampleDetail
from geogui.gui.samples.logged import read_logged_samples
from geogui.gui.samples.request_form import RequestForm
from geogui.gui.samples.table_model import COLUMNS, SamplesModel
from geogui.rundir.meta import read_meta
from geogui.rundir.sampling import run_sampling_settings
from geogui.settings import SamplingSettings

TITLE = "Samples"
GENERATE, CANCEL, CANCELLING = "Generate", "Cancel", "Cancelling…"


class SamplesTab(QWidget):
    sample_added = Signal(object)  # SampleRecord: a row was added
    message = Signal(str)  # for the status bar

    def __init__(self, session: Callable[[], object | None], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._session = session  # the TrainingSession of a run trained here, else None
        self._connected = None  # the session whose samples arrive here
        self._waiting = False  # a request is out and its answer not yet back
        self.run_dir: Path | None = None
        self.sampler = CheckpointSampler(self)
        self.sampler.sampled.connect(self._on_requested)
        self.sampler.failed.connect(self._on_failed)
        self.sampler.idle.connect(self._show_busy)
        self.form = RequestForm()
        self.generate_button = QPushButton(GENERATE)
        self.generate_button.setToolTip("Continue the prompt with the current weights (a paused or trained run: "
                                        "its latest checkpoint)")
        self.generate_button.clicked.connect(self._on_button)
        self.state = QLabel()
        self.model = SamplesModel(self)
        self.table = self._build_table()
        self.detail = SampleDetail()
        self._lay_out()
        self.detail.show_record(None)
        self._show_busy()

    def _build_table(self) -> QTableView:
        table = QTableView()
        table.setModel(self.model)
        table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        table.setTextElideMode(Qt.TextElideMode.ElideRight)
        table.setWordWrap(False)
        table.verticalHeader().hide()
        header = table.horizontalHeader()
        for column, name in enumerate(COLUMNS):
            stretch = name in ("Prompt", "Output")
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.Stretch if stretch
                                        else QHeaderView.ResizeMode.Fixed)
        # Fixed widths that fit the widest value: a column sized to its contents would jump per row.
        metrics, pad = table.fontMetrics(), 16
        for name, widest in (("Step", "000,000"), ("Mode", "Geometric fast"), ("Answer", "Answer")):
            header.resizeSection(COLUMNS.index(name), metrics.horizontalAdvance(widest) + pad)
        table.selectionModel().currentRowChanged.connect(lambda current, _previous: self._show_row(current.row()))
        return table

    def _lay_out(self) -> None:
        buttons = QHBoxLayout()
        buttons.addWidget(self.generate_button)
        buttons.addWidget(self.state, 1)
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(self.table)
        splitter.addWidget(self.detail)
        splitter.setStretchFactor(0, 1)
        splitter.setStretchFactor(1, 1)
        column = QVBoxLayout(self)
        column.setContentsMargins(6, 6, 6, 6)
        column.addWidget(self.form)
        column.addLayout(buttons)
        column.addWidget(splitter, 1)

    # -- the run shown ----------------------------------------------------------------------------
    def show_run(self, path: Path | None) -> None:
        """The current run changed: its logged samples, its sampling settings and expert names."""
        if path == self.run_dir and path is not None:
            return
        self.run_dir = Path(path) if path is not None else None
        self.sampler.forget_run()
        self.model.clear()
        self.detail.show_record(None)
        if self.run_dir is None:
            return
        self._read_meta(self.run_dir)
        self.add_samples(read_logged_samples(self.run_dir))
        session = self._session()
        if session is not None:  # a run training here: its samples come live, Generate or not
            self._listen_to(session)

    def _read_meta(self, path: Path) -> None:
        try:
            meta = read_meta(path)
            self.form.set_sampling(SamplingSettings.model_validate(run_sampling_settings(meta)))
            self.detail.set_expert_names(list(meta.model_settings().expert_names))
            if meta.heldout_prompt:
                self.form.offer_prompt(meta.heldout_prompt, meta.heldout_answer)
        except (OSError, ValueError):  # a run without a readable meta.json still shows its samples
            self.detail.set_expert_names([])

    def add_samples(self, records: list[SampleRecord]) -> None:
        """Rows for samples taken from the current run: logged during training, or asked for here."""
        if not records:
            return
        at_end = self.table.currentIndex().row() in (-1, len(self.model.records) - 1)
        self.model.add(list(records))
        last = records[-1]
        self.form.offer_prompt(last.prompt, last.expected)
        if at_end:  # follow the newest sample unless the user is reading an older one
            self.table.selectRow(len(self.model.records) - 1)
        for record in records:
            self.sample_added.emit(record)

    def _show_row(self, row: int) -> None:
        self.detail.show_record(self.model.records[row] if 0 <= row < len(self.model.records) else None)

    # -- asking for a sample ----------------------------------------------------------------------
    def _on_button(self) -> None:
        if self._waiting:
            self.cancel()
        else:
            self.generate()

    def generate(self) -> bool:
        request = self.form.request()
        if request is None:
            return False
        session = self._session()
        if session is not None:
            self._listen_to(session)
            session.worker.request_sample(request)
            note = "the trainer takes it between two batches"
        elif self.run_dir is not None:
            if not self.sampler.sample(self.run_dir, request):
                return False
            note = f"loading {self.run_dir.name}'s latest checkpoint in the background"
        else:
            self.message.emit("Start a run or open one to sample from it")
            return False
        self._waiting = True
        self.state.setText(f"Sampling: {note}…")
        self._show_busy()
        return True

    def cancel(self) -> None:
        """Stop waiting: the answer, when it comes, is dropped (a trainer's is still logged and listed)."""
        self._waiting = False
        self.sampler.cancel()
        self.state.setText("Cancelled")
        self._show_busy()

    def _listen_to(self, session) -> None:
        if self._connected is not session:
            session.worker.sample_taken.connect(self._on_requested)
            session.worker.run_started.connect(self._on_run_started)
            session.ended.connect(self._on_session_ended)
            self._connected = session

    def _on_run_started(self, started: RunStarted) -> None:
        if started.heldout_prompt:
            self.form.offer_prompt(started.heldout_prompt, started.heldout_answer)

    def _on_requested(self, record: SampleRecord) -> None:
        self._waiting = False
        self.state.setText(f"Sampled at step {record.step:,} in {record.seconds:.2f} s")
        self.add_samples([record])
        self._show_busy()

    def _on_failed(self, message: str) -> None:
        self._waiting = False
        self.state.setText(f"No sample: {message}")
        self.message.emit(f"No sample: {message}")
        self._show_busy()

    def _on_session_ended(self) -> None:
        self._connected = None
        if self._waiting:  # the run ended before a batch boundary came
            self._waiting = False
            self.state.setText("The run ended before the sample was taken: Generate again to sample its checkpoint")
        self._show_busy()

    def _show_busy(self) -> None:
        cancelling = not self._waiting and self.sampler.busy
        self.generate_button.setText(CANCEL if self._waiting else CANCELLING if cancelling else GENERATE)
        self.generate_button.setEnabled(not cancelling)

    def shutdown(self) -> None:
        self.sampler.shutdown()
