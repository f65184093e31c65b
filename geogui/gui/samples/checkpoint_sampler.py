"""Samples from a run that is not training here (opened, finished, stopped): its latest checkpoint is
loaded and sampled in a QThread of its own, never on the GUI thread, which stays responsive and never
imports torch for it. The loaded model is kept for the next sample of the same run.

Cancel cannot interrupt a byte loop halfway; it drops the answer, and the thread ends by itself after
at most one sample (the button says so until then). As for the training thread, Python's cyclic
collector runs on the GUI thread only while this thread lives (`gui_thread_gc`).
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from PySide6.QtCore import QObject, QThread, Signal, Slot

from geogui.engine.sample_request import SampleRequest
from geogui.gui.gui_thread_gc import gui_thread_garbage_collection

log = logging.getLogger(__name__)


class _LoadedRuns:
    """The last run loaded for sampling; touched only in the sampling thread."""

    def __init__(self) -> None:
        self.path: Path | None = None
        self.run = None  # geogui.rundir.sampling.SamplingRun
        self.default: tuple[str, str | None] | None = None  # its first held-out question and answer

    def sample(self, path: Path, request: SampleRequest, cancelled: threading.Event):
        from geogui.engine.sample_request import default_line, first_heldout_prompt, take_sample
        from geogui.rundir.sampling import load_sampling_run

        if self.path != path:
            self.path, self.run, self.default = path, load_sampling_run(path), None
        if cancelled.is_set():
            return None
        if not request.prompt:
            if self.default is None:
                text = self.run.validation_text()
                self.default = first_heldout_prompt(text) or (default_line(text), None)
            request = SampleRequest(self.default[0], request.sampling, self.default[1], request.seed)
        return None if cancelled.is_set() else take_sample(self.run.state, request)


class _Job(QObject):
    sampled = Signal(object)  # SampleRecord
    failed = Signal(str)

    def __init__(self, runs: _LoadedRuns, path: Path, request: SampleRequest, cancelled: threading.Event) -> None:
        super().__init__()
        self._runs, self._path, self._request, self._cancelled = runs, path, request, cancelled

    @Slot()
    def run(self) -> None:
        try:
            record = self._runs.sample(self._path, self._request, self._cancelled)
            if record is not None:
                self.sampled.emit(record)
        except Exception as exc:  # noqa: BLE001 - a missing checkpoint, unreadable data: shown, not raised
            log.warning("could not sample the run", exc_info=True)
            self.failed.emit(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        finally:
            self.thread().quit()


class CheckpointSampler(QObject):
    """One sample at a time from a run directory's latest checkpoint, in a background thread."""

    sampled = Signal(object)  # SampleRecord (not sent after cancel)
    failed = Signal(str)
    idle = Signal()  # the thread has ended: a new sample may be asked for

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._runs = _LoadedRuns()
        self._thread: QThread | None = None
        self._job: _Job | None = None
        self._cancelled = threading.Event()

    @property
    def busy(self) -> bool:
        return self._thread is not None

    def sample(self, path: Path, request: SampleRequest) -> bool:
        if self.busy:
            return False
        self._cancelled = threading.Event()
        thread, job = QThread(), _Job(self._runs, Path(path), request, self._cancelled)
        thread.setObjectName("geogui-sampling")
        job.moveToThread(thread)
        thread.started.connect(job.run)
        job.sampled.connect(self._on_sampled)
        job.failed.connect(self._on_failed)
        thread.finished.connect(self._on_thread_finished)
        self._thread, self._job = thread, job
        gui_thread_garbage_collection().hold()
        thread.start()
        return True

    def cancel(self) -> None:
        self._cancelled.set()

    def forget_run(self) -> None:
        """Another run is shown: the loaded model is dropped once no thread uses it."""
        if not self.busy:
            self._runs = _LoadedRuns()

    def _on_sampled(self, record) -> None:
        if not self._cancelled.is_set():
            self.sampled.emit(record)

    def _on_failed(self, message: str) -> None:
        if not self._cancelled.is_set():
            self.failed.emit(message)

    def _on_thread_finished(self) -> None:
        if self._thread is None:
            return
        self._thread.wait()
        self._thread, self._job = None, None
        gui_thread_garbage_collection().release()
        self.idle.emit()

    def shutdown(self) -> None:
        """The window is closing: drop the answer and wait for the thread (never terminate() it)."""
        if self._thread is not None:
            self._cancelled.set()
            self._thread.wait()
            self._on_thread_finished()
