"""The worker runs the real trainer in a QThread. Control calls are made from a direct-connected slot,
i.e. in the worker thread right after a batch's record is emitted, so "within one batch" is exact."""

from __future__ import annotations

import gc

from PySide6.QtCore import Qt

from geogui import paths
from geogui.engine.checkpoint import latest_checkpoint
from geogui.engine.metrics import BatchRecord, RunFinished, RunStarted
from geogui.rundir.runlog import read_metrics
from geogui.gui.worker import TrainingSession
from geogui.settings import Mode

from .conftest import only_run_dir, run_meta, tiny_settings

TIMEOUT_MS = 60_000


class Recorder:
    """Everything the worker emits, in emission order, recorded in the worker thread."""

    def __init__(self, session: TrainingSession, on_batch=None) -> None:
        self.log: list[tuple[str, object]] = []
        self._on_batch = on_batch
        worker, direct = session.worker, Qt.ConnectionType.DirectConnection
        worker.run_started.connect(lambda event: self.log.append(("started", event)), direct)
        worker.metrics_ready.connect(self._metrics, direct)
        worker.mode_changed.connect(lambda event: self.log.append(("mode", event)), direct)
        worker.event_reported.connect(lambda event: self.log.append((event.event, event)), direct)
        worker.failed.connect(lambda message: self.log.append(("failed", message)), direct)
        worker.finished.connect(lambda event: self.log.append(("finished", event)), direct)

    def _metrics(self, records) -> None:
        for record in records:
            self.log.append(("batch" if isinstance(record, BatchRecord) else "eval", record))
            if isinstance(record, BatchRecord) and self._on_batch:
                self._on_batch(record)

    def steps(self) -> list[int]:
        return [record.step for kind, record in self.log if kind == "batch"]

    def kinds(self) -> list[str]:
        return [kind for kind, _payload in self.log]


def start(qtbot, session: TrainingSession) -> None:
    with qtbot.waitSignal(session.worker.run_started, timeout=TIMEOUT_MS):
        session.start()


def test_signals_arrive_in_order_and_everything_is_logged(qtbot):
    session = TrainingSession(tiny_settings(steps=12), metrics_interval_s=0.05)
    recorder = Recorder(session)
    with qtbot.waitSignal(session.ended, timeout=TIMEOUT_MS):
        session.start()
    kinds = recorder.kinds()
    assert kinds[0] == "started" and isinstance(recorder.log[0][1], RunStarted)
    assert kinds[-1] == "finished" and recorder.log[-1][1] == RunFinished(12, "finished")
    assert recorder.steps() == list(range(1, 13))
    assert [r.step for kind, r in recorder.log if kind == "eval"] == [10, 12]
    logged = read_metrics(only_run_dir())
    assert [r["step"] for r in logged if r["kind"] == "batch"] == list(range(1, 13))
    assert run_meta(only_run_dir())["status"] == "finished"
    assert latest_checkpoint(only_run_dir()) is not None  # the app's runs can be resumed like the CLI's


class TickingClock:
    """Advances 1 ms at every reading: the batching then depends on the number of records, not on how
    fast this machine trains them."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 0.001
        return self.now


def test_metrics_are_sent_in_lists_not_one_signal_per_batch(qtbot):
    session = TrainingSession(tiny_settings(steps=60), metrics_interval_s=0.05, metrics_clock=TickingClock())
    sizes = []
    session.worker.metrics_ready.connect(lambda records: sizes.append(len(records)), Qt.ConnectionType.DirectConnection)
    with qtbot.waitSignal(session.ended, timeout=TIMEOUT_MS):
        session.start()
    assert sum(sizes) == 60 + 6  # every batch and every eval, once
    assert all(isinstance(size, int) and size >= 1 for size in sizes)
    assert sizes[0] == 1, sizes  # the first record goes out at once
    # Then a list per 50 ms of clock, ~25 records at 1 ms each: never one signal per record.
    assert all(size > 1 for size in sizes[1:]) and len(sizes) <= 5, sizes


def test_pause_resume_and_stop_each_act_within_one_batch(qtbot):
    session = TrainingSession(tiny_settings(steps=100_000), metrics_interval_s=0)

    def control(record: BatchRecord) -> None:
        if record.step == 5:
            session.pause()
        elif record.step == 12:
            session.stop()

    recorder = Recorder(session, control)
    with qtbot.waitSignal(session.worker.event_reported, timeout=TIMEOUT_MS,
                          check_params_cb=lambda event: event.event == "paused"):
        session.start()
    assert max(recorder.steps()) <= 6  # paused after at most one more batch
    paused_at = len(recorder.steps())
    assert recorder.kinds()[-1] == "paused"

    with qtbot.waitSignal(session.ended, timeout=TIMEOUT_MS):
        session.resume()
    kinds, steps = recorder.kinds(), recorder.steps()
    assert kinds.index("resumed") == kinds.index("paused") + 1  # nothing was trained while paused
    assert steps == list(range(1, len(steps) + 1))  # and nothing skipped or repeated
    assert steps[paused_at - 1] == paused_at
    finished = recorder.log[-1][1]
    assert finished.status == "stopped" and 12 <= finished.step <= 13
    assert max(steps) <= 13
    assert run_meta(only_run_dir())["status"] == "stopped"


def test_stop_while_paused(qtbot):
    session = TrainingSession(tiny_settings(steps=100_000), metrics_interval_s=0)
    recorder = Recorder(session, lambda record: session.pause() if record.step == 3 else None)
    with qtbot.waitSignal(session.worker.event_reported, timeout=TIMEOUT_MS,
                          check_params_cb=lambda event: event.event == "paused"):
        session.start()
    with qtbot.waitSignal(session.ended, timeout=TIMEOUT_MS):
        session.stop()
    assert recorder.log[-1][1] == RunFinished(max(recorder.steps()), "stopped")
    assert max(recorder.steps()) <= 4


def test_mode_and_penalty_requests_apply_at_the_next_batch(qtbot):
    session = TrainingSession(tiny_settings(steps=10), metrics_interval_s=0)

    def control(record: BatchRecord) -> None:
        if record.step == 4:
            session.request_mode(Mode.STANDARD)
            session.request_penalty_weight(0.25)

    recorder = Recorder(session, control)
    with qtbot.waitSignal(session.ended, timeout=TIMEOUT_MS):
        session.start()
    change = next(payload for kind, payload in recorder.log if kind == "mode")
    assert (change.step, change.mode, change.penalty_weight, change.previous_mode) == (5, "standard", 0.25,
                                                                                     "geometric_fast")
    batches = [payload for kind, payload in recorder.log if kind == "batch"]
    assert [b.mode for b in batches] == ["geometric_fast"] * 4 + ["standard"] * 6
    assert all(b.rotation_angles is None for b in batches[4:])


def test_a_stop_before_the_trainer_exists_is_kept(qtbot):
    session = TrainingSession(tiny_settings(steps=100_000), metrics_interval_s=0)
    recorder = Recorder(session)
    session.stop()  # before start: the worker must still honour it
    with qtbot.waitSignal(session.ended, timeout=TIMEOUT_MS):
        session.start()
    assert recorder.log[-1][0] == "finished" and recorder.log[-1][1].status == "stopped"
    assert recorder.steps() == []


def test_a_bad_data_file_fails_with_its_one_line_message(qtbot, tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    settings = tiny_settings()
    settings.data.path = empty
    session = TrainingSession(settings)
    recorder = Recorder(session)
    with qtbot.waitSignal(session.ended, timeout=TIMEOUT_MS):
        session.start()
    assert recorder.kinds() == ["failed"]
    assert recorder.log[0][1] == f"{empty}: file is empty"
    assert not any(paths.runs_dir().iterdir())  # a bad data file leaves no run directory behind


def test_an_exception_mid_run_is_reported_and_the_log_closed_as_failed(qtbot, monkeypatch):
    from geogui.engine import trainer as trainer_module

    original_run = trainer_module.Trainer.run

    def run_then_break(self):
        for event in original_run(self):
            yield event
            if isinstance(event, BatchRecord) and event.step == 3:
                raise RuntimeError("simulated failure")

    monkeypatch.setattr(trainer_module.Trainer, "run", run_then_break)
    session = TrainingSession(tiny_settings(), metrics_interval_s=0.05)
    recorder = Recorder(session)
    with qtbot.waitSignal(session.ended, timeout=TIMEOUT_MS):
        session.start()
    assert recorder.steps() == [1, 2, 3]  # the records before the failure are still delivered
    assert recorder.log[-1] == ("failed", "RuntimeError: simulated failure")
    assert run_meta(only_run_dir())["status"] == "failed"



def test_a_resumed_run_does_not_hold_its_earlier_records_while_it_trains(qtbot):
    """Once sent, the records replayed at a resume are the plots' to keep: a run resumed at step 200,000
    would otherwise keep 200,000 BatchRecords alive in the worker until it ends."""
    first = TrainingSession(tiny_settings(steps=20, checkpoint_interval=10))
    with qtbot.waitSignal(first.ended, timeout=TIMEOUT_MS):
        first.start()
    resumed = TrainingSession(tiny_settings(steps=30, checkpoint_interval=10), resume_dir=only_run_dir())
    replayed, held = [], []

    def early_records() -> int:  # of any run: earlier tests may leave some behind
        return sum(1 for o in gc.get_objects() if type(o) is BatchRecord and o.step <= 20)

    gc.collect()
    before = early_records()

    def on_metrics(records) -> None:
        steps = [r.step for r in records if isinstance(r, BatchRecord)]
        replayed.extend(step for step in steps if step <= 20)
        if not held and any(step > 25 for step in steps):  # the worker is training, past the replay
            held.append(early_records() - before)

    resumed.worker.metrics_ready.connect(on_metrics, Qt.ConnectionType.DirectConnection)
    with qtbot.waitSignal(resumed.ended, timeout=TIMEOUT_MS):
        resumed.start()
    assert replayed == list(range(1, 21))
    assert held and held[0] <= 0
