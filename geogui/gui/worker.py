"""The only threading code in the app: drives a run (`geogui.rundir.driver`, the same driver as
geogui-train's) in a QThread and turns its events into typed Qt signals.

Rules this module keeps:
- torch is imported only inside `TrainingWorker.run` (the driver imports it on first use), i.e. in
  the worker thread. A torch op on the GUI thread measurably slows training, and importing torch
  before the window shows delays start-up.
- Only the frozen records of `geogui.engine.metrics` cross threads.
- Per-batch records are sent in lists about every 50 ms, not one signal per batch: a fast model
  makes thousands of batches a second and the GUI thread must not drown in queued events.
- While the thread runs, Python's cyclic garbage collector runs on the GUI thread only
  (`gui_thread_gc`): a cycle holding a Qt object must never be destroyed in the training thread.
- Stopping never uses QThread.terminate(): the trainer is asked to stop, which it does within one
  batch, and the thread's event loop ends when the run slot returns.
- A resumed run (`resume_dir`) continues that directory from its latest checkpoint. Its earlier
  records, up to the checkpoint's step, are sent first, right after `run_started`, through the same
  signals as live ones, so the plots show the whole run with step numbers continuing.
"""

from __future__ import annotations

import logging
import threading
import time
from contextlib import closing
from pathlib import Path
from typing import Callable

from PySide6.QtCore import QObject, QThread, Signal, Slot

from geogui.engine.metrics import (BatchRecord, EvalRecord, ModeChange, RunEvent, RunFinished, RunStarted,
                                   split_at_mode_changes)
from geogui.engine.samples import AccuracyRecord, SampleRecord
from geogui.gui.gui_thread_gc import gui_thread_garbage_collection
from geogui.rundir.driver import ResumePlan, RunDriver, RunFailed, one_line
from geogui.settings import Mode, Settings

log = logging.getLogger(__name__)

METRICS_INTERVAL_S = 0.05
WORKER_STACK_BYTES = 16 * 2**20


class MetricsBatcher:
    """Collects BatchRecord/EvalRecord objects and says when a list of them should be sent."""

    def __init__(self, interval_s: float = METRICS_INTERVAL_S, clock: Callable[[], float] = time.perf_counter):
        self.interval_s = interval_s
        self._clock = clock
        self._pending: list[BatchRecord | EvalRecord] = []
        self._last_sent = -float("inf")  # the first record goes out at once
        self._last_batch_at: float | None = None
        self._batch_gap = 0.0

    def add(self, record: BatchRecord | EvalRecord) -> list[BatchRecord | EvalRecord] | None:
        """Queue `record`; return the list to send now, or None to keep collecting."""
        now = self._clock()
        self._pending.append(record)
        if isinstance(record, BatchRecord):
            if self._last_batch_at is not None:
                self._batch_gap = now - self._last_batch_at
            self._last_batch_at = now
        # Send when the interval is up, or when waiting for the next batch would overrun it: with slow
        # batches every record then goes out at once instead of waiting a whole batch.
        if now - self._last_sent + self._batch_gap >= self.interval_s:
            return self.drain()
        return None

    def drain(self) -> list[BatchRecord | EvalRecord]:
        pending, self._pending = self._pending, []
        if pending:
            self._last_sent = self._clock()
        return pending


class TrainingWorker(QObject):
    """Runs one training run. Lives in a QThread; its control methods are called from the GUI thread."""

    run_started = Signal(object)  # RunStarted
    metrics_ready = Signal(list)  # list of BatchRecord / EvalRecord / AccuracyRecord, in step order
    # SampleRecord: what the model wrote, every sample_interval steps or asked by request_sample
    # (each also in the run's samples.jsonl)
    sample_taken = Signal(object)
    mode_changed = Signal(object)  # ModeChange
    event_reported = Signal(object)  # RunEvent
    failed = Signal(str)  # one-line message; the run log is closed with status "failed"
    finished = Signal(object)  # RunFinished; the run log is closed with its status
    log_opened = Signal(object)  # Path of the run directory, once it is being written

    def __init__(self, settings: Settings, metrics_interval_s: float = METRICS_INTERVAL_S,
                 resume_dir: Path | None = None, metrics_clock: Callable[[], float] = time.perf_counter,
                 make_driver: Callable[[], RunDriver] | None = None) -> None:
        super().__init__()
        self._settings = settings
        self._make_driver = make_driver  # a new run driven otherwise (one run of a mode comparison)
        self._resume_dir = Path(resume_dir) if resume_dir is not None else None
        self._metrics_interval_s = metrics_interval_s
        self._clock = metrics_clock
        self._lock = threading.Lock()
        self._trainer = None
        self._early_calls: list[Callable] = []  # control calls made before the trainer existed
        self._stop_requested = False

    # -- control, from the GUI thread -------------------------------------------------------------
    def pause(self) -> None:
        self._control(lambda trainer: trainer.pause())

    def resume(self) -> None:
        self._control(lambda trainer: trainer.resume())

    def stop(self) -> None:
        with self._lock:
            self._stop_requested = True
        self._control(lambda trainer: trainer.stop())

    def request_mode(self, mode: Mode) -> None:
        self._control(lambda trainer: trainer.request_mode(mode))

    def request_penalty_weight(self, weight: float) -> None:
        self._control(lambda trainer: trainer.request_penalty_weight(weight))

    def request_sample(self, request) -> None:  # a SampleRequest; answered by `sample_taken`
        self._control(lambda trainer: trainer.request_sample(request))

    def _control(self, call: Callable) -> None:
        with self._lock:
            trainer = self._trainer
            if trainer is None:
                self._early_calls.append(call)
                return
        call(trainer)

    # -- the run, in the worker thread ------------------------------------------------------------
    @Slot()
    def run(self) -> None:
        try:
            self._run()
        finally:
            # The thread's event loop ends as soon as this slot returns; nothing else runs there.
            self.thread().quit()

    def _run(self) -> None:
        prepared = self._prepare()
        if prepared is None:
            return
        driver, history = prepared
        if not self._hand_over(driver.trainer):
            return
        try:
            self.log_opened.emit(driver.open_log())
        except Exception as exc:  # noqa: BLE001 - a runs folder that cannot be written, a locked run
            log.warning("could not open the run directory", exc_info=True)
            self.failed.emit(one_line(exc))
            return
        self._relay(driver, history)

    def _prepare(self) -> tuple[RunDriver, list] | None:
        """The driver with its trainer built, and a resumed run's earlier records; None after `failed`.
        The data and a resumed run's checkpoint are read before the run directory is written to, so a
        bad file leaves nothing behind; so is a size that would not fit in memory."""
        if self._make_driver is not None:
            driver = self._make_driver()
        elif self._resume_dir is None:
            driver = RunDriver.new(self._settings)
        else:
            driver = RunDriver.resuming(ResumePlan(self._resume_dir, self._settings))
        try:
            driver.prepare()  # imports torch: here, in the worker thread only
            driver.build_trainer()
            return driver, driver.earlier_records()
        except Exception as exc:  # noqa: BLE001 - whatever breaks is shown to the user, not swallowed
            log.warning("could not start the run", exc_info=True)
            self.failed.emit(one_line(exc))
            return None

    def _hand_over(self, trainer) -> bool:
        """Let the control calls reach `trainer`, those made before it existed first; False (and
        `finished`) when a stop came first."""
        with self._lock:
            if self._stop_requested:
                self.finished.emit(RunFinished(step=0, status="stopped"))
                return False
            self._trainer = trainer
            early_calls, self._early_calls = self._early_calls, []
        for call in early_calls:
            call(trainer)
        return True

    def _relay(self, driver: RunDriver, history: list) -> None:
        """The driver's events as signals: records in lists, every other event on its own and after
        the records before it. The driver has closed the run log by the time the last one is sent."""
        batcher = MetricsBatcher(self._metrics_interval_s, self._clock)
        last_step = 0
        finished: RunFinished | None = None
        with closing(driver.run()) as events:
            for event in events:
                if isinstance(event, (BatchRecord, EvalRecord, AccuracyRecord)):
                    last_step = event.step
                    ready = batcher.add(event)
                    if ready:
                        self.metrics_ready.emit(ready)
                    continue
                self._send(batcher)
                if isinstance(event, RunStarted):
                    self.run_started.emit(event)
                    self._send_history(history)
                    # Sent: the plots hold them now. Kept here, they would stay alive all run long.
                    history.clear()
                elif isinstance(event, ModeChange):
                    self.mode_changed.emit(event)
                elif isinstance(event, RunEvent):
                    self.event_reported.emit(event)
                elif isinstance(event, SampleRecord):
                    self.sample_taken.emit(event)
                elif isinstance(event, RunFinished):
                    finished = event
                elif isinstance(event, RunFailed):
                    log.error("training run failed", exc_info=driver.error)
                    self.failed.emit(event.message)
                    return
        self._send(batcher)
        self.finished.emit(finished or RunFinished(step=last_step, status="finished"))

    def _send_history(self, history: list) -> None:
        for part in split_at_mode_changes(history):
            if isinstance(part, ModeChange):
                self.mode_changed.emit(part)
            else:
                self.metrics_ready.emit(part)

    def _send(self, batcher: MetricsBatcher) -> None:
        ready = batcher.drain()
        if ready:
            self.metrics_ready.emit(ready)


class TrainingSession(QObject):
    """One run: a TrainingWorker in its own QThread. Connect to `worker`'s signals before `start()`."""

    ended = Signal()  # the thread has finished; the worker's last signal has been sent before this

    def __init__(self, settings: Settings, metrics_interval_s: float = METRICS_INTERVAL_S,
                 parent: QObject | None = None, resume_dir: Path | None = None,
                 metrics_clock: Callable[[], float] = time.perf_counter,
                 make_driver: Callable[[], RunDriver] | None = None) -> None:
        super().__init__(parent)
        self.worker = TrainingWorker(settings, metrics_interval_s, resume_dir, metrics_clock, make_driver)
        self.worker_thread = QThread()
        self.worker_thread.setObjectName("geogui-training")
        # macOS gives a QThread 512 KiB of stack, Python's own threads 16 MiB; the worker runs the
        # recursive corpus reducer, pydantic and JSON parsing, which can go deeper than 512 KiB.
        self.worker_thread.setStackSize(WORKER_STACK_BYTES)
        self.worker.moveToThread(self.worker_thread)
        self.worker_thread.started.connect(self.worker.run)
        self.worker_thread.finished.connect(self._thread_finished)
        self._holding_gc = False

    def start(self) -> None:
        gui_thread_garbage_collection().hold()
        self._holding_gc = True
        self.worker_thread.start()

    @Slot()
    def _thread_finished(self) -> None:
        # `finished` is emitted by the ending thread itself: wait until it is really gone before
        # the collector may run in any thread again.
        self.worker_thread.wait()
        self._release_gc()
        self.ended.emit()

    def _release_gc(self) -> None:
        if self._holding_gc:
            self._holding_gc = False
            gui_thread_garbage_collection().release()

    def pause(self) -> None:
        self.worker.pause()

    def resume(self) -> None:
        self.worker.resume()

    def stop(self) -> None:
        self.worker.stop()

    def request_mode(self, mode: Mode) -> None:
        self.worker.request_mode(mode)

    def request_penalty_weight(self, weight: float) -> None:
        self.worker.request_penalty_weight(weight)

    def shutdown(self) -> None:
        """Stop the run and block until its thread has ended (the run log is closed by then)."""
        self.worker.stop()
        self.worker_thread.quit()
        self.worker_thread.wait()
        self._release_gc()

