"""Generate in the Samples tab with the real trainer: served by the paused trainer, or from an opened
run's latest checkpoint, never on the GUI thread."""

from __future__ import annotations

import threading

import pytest
from PySide6.QtCore import QTimer

from geogui.engine import sample_request
from geogui.gui.main_window import MainWindow
from tests.gui.conftest import tiny_settings
from tests.gui.test_app import WATCH_TORCH_IMPORTS, run_python

TIMEOUT_MS = 60_000
TICKS = 5  # GUI-thread timer ticks that must pass while a sample is being taken


@pytest.fixture
def make_window(qtbot):
    def make(settings) -> MainWindow:
        window = MainWindow(settings, persist=False)
        qtbot.addWidget(window)
        window.show()
        return window
    return make


@pytest.fixture
def gated_sampling(monkeypatch):
    """take_sample waits until the GUI thread's timer has ticked TICKS times, and notes its thread:
    were it called on the GUI thread, the timer could not tick and the wait would time out."""
    real = sample_request.take_sample
    gate = threading.Event()
    on_gui_thread: list[bool] = []

    def gated(state, request, mode=None):
        on_gui_thread.append(threading.current_thread() is threading.main_thread())
        assert gate.wait(30), "the GUI thread's timer did not tick while the sample was taken"
        return real(state, request, mode)

    monkeypatch.setattr(sample_request, "take_sample", gated)
    ticks = [0]
    timer = QTimer()
    timer.setInterval(1)

    def tick():
        ticks[0] += 1
        if ticks[0] >= TICKS:
            gate.set()
    timer.timeout.connect(tick)
    timer.start()
    yield on_gui_thread, ticks
    timer.stop()
    gate.set()


def short_samples(window: MainWindow) -> None:
    window.samples.form.editors["max_bytes"].set_value(24)


def test_generate_on_a_paused_run_is_served_by_the_trainer_while_the_gui_keeps_ticking(
        qtbot, make_window, gated_sampling):
    on_gui_thread, ticks = gated_sampling
    window = make_window(tiny_settings(steps=100_000))
    assert window.start_run()
    qtbot.waitUntil(lambda: len(window.plots.series) >= 3, timeout=TIMEOUT_MS)
    with qtbot.waitSignal(window.session.worker.event_reported, timeout=TIMEOUT_MS,
                          check_params_cb=lambda event: event.event == "paused") as paused:
        window.toolbar.pause_action.trigger()
    tab = window.samples
    short_samples(window)
    tab.generate_button.click()
    assert tab.generate_button.text() == "Cancel"  # busy, and the click returned at once
    qtbot.waitUntil(lambda: tab.model.rowCount() == 1, timeout=TIMEOUT_MS)
    record = tab.model.records[0]
    assert on_gui_thread == [False] and ticks[0] >= TICKS
    assert record.step == paused.args[0].step and record.mode == window.plots.series.segments[-1].mode
    assert record.prompt and tab.form.prompt.toPlainText() == record.prompt  # the held-out question used
    assert tab.generate_button.text() == "Generate"
    with qtbot.waitSignal(window.session.ended, timeout=TIMEOUT_MS):
        window.toolbar.stop_action.trigger()


def test_generate_on_a_finished_run_samples_its_checkpoint_in_the_background(qtbot, make_window, gated_sampling):
    on_gui_thread, ticks = gated_sampling
    window = make_window(tiny_settings(steps=12))
    assert window.start_run()
    qtbot.waitUntil(lambda: window.session is None, timeout=TIMEOUT_MS)
    tab = window.samples
    short_samples(window)
    assert tab.generate()
    assert tab.sampler.busy and tab.generate_button.text() == "Cancel"
    qtbot.waitUntil(lambda: tab.model.rowCount() == 1 and not tab.sampler.busy, timeout=TIMEOUT_MS)
    record = tab.model.records[0]
    assert on_gui_thread == [False] and ticks[0] >= TICKS
    assert record.step == 12 and len(record.experts) == window.panel.settings().model.n_layers


def test_sampling_an_opened_run_imports_torch_in_the_background_thread_only(tiny_file, tmp_path):
    run_dir = tmp_path / "trained"
    trained = run_python("from geogui.cli.train import main; raise SystemExit(main(["
                         f"'--settings', {str(tiny_file)!r}, '--steps', '5', '--out', {str(run_dir)!r}, '--quiet']))")
    assert trained.returncode == 0, trained.stderr
    result = run_python(WATCH_TORCH_IMPORTS + """

        from PySide6.QtCore import QTimer
        from PySide6.QtWidgets import QApplication
        from geogui.gui.main_window import MainWindow
        from geogui.settings import Settings

        app = QApplication([])
        window = MainWindow(Settings(), persist=False)
        window.show()
        assert window.open_run(Path(sys.argv[1]))
        assert "torch" not in sys.modules, "torch imported before sampling"
        window.samples.form.editors["max_bytes"].set_value(8)
        window.samples.sampler.idle.connect(app.quit)
        assert window.samples.generate()
        app.exec()
        assert window.samples.model.rowCount() == 1, window.samples.state.text()
        assert importers == [False], importers
        window.close()
    """, str(run_dir))
    assert result.returncode == 0, result.stderr


def test_samples_logged_during_a_run_appear_in_the_tab_without_asking(qtbot, make_window):
    settings = tiny_settings(steps=100_000)
    settings = settings.model_copy(update={"sampling": settings.sampling.model_copy(
        update={"sample_interval": 2, "max_bytes": 4, "prompt": "Q: "})})
    window = make_window(settings)
    assert window.start_run()
    qtbot.waitUntil(lambda: len(window.samples.model.records) >= 2, timeout=TIMEOUT_MS)
    steps = [record.step for record in window.samples.model.records]
    assert steps[:2] == [2, 4]
    window.stop_run()
    qtbot.waitUntil(lambda: window.session is None, timeout=TIMEOUT_MS)
