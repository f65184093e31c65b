"""The window with the real trainer: start, plot, pause, switch mode, stop, close, fail, persist."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QMessageBox

from geogui.settings import store as settings_store
from geogui.engine.metrics import BatchRecord
from geogui.rundir.runlog import read_metrics
from geogui.gui.main_window import MainWindow
from geogui.gui.widgets.status_bar import format_bytes
from geogui.settings import Mode

from .conftest import only_run_dir, run_meta, tiny_settings

TIMEOUT_MS = 60_000


@pytest.fixture
def make_window(qtbot):
    def make(settings=None, persist=False) -> MainWindow:
        window = MainWindow(settings or tiny_settings(steps=100_000), persist=persist)
        qtbot.addWidget(window)  # closed after the test, which also stops a run left going
        window.show()
        return window
    return make


def plotted(window: MainWindow) -> int:
    return len(window.plots.series)


def start_and_wait_for(qtbot, window: MainWindow, batches: int) -> None:
    assert window.start_run()
    qtbot.waitUntil(lambda: plotted(window) >= batches, timeout=TIMEOUT_MS)


def stop_and_wait(qtbot, window: MainWindow) -> None:
    with qtbot.waitSignal(window.session.ended, timeout=TIMEOUT_MS):
        window.toolbar.stop_action.trigger()


def test_start_plots_real_metrics_and_fills_the_status_bar(qtbot, make_window):
    window = make_window(tiny_settings(steps=25))
    assert window.windowTitle() == "geogui"
    with qtbot.waitSignal(window.plots.redrawn, timeout=TIMEOUT_MS, check_params_cb=lambda n: n >= 25):
        window.toolbar.start_action.trigger()
        assert not window.toolbar.start_action.isEnabled() and not window.panel.isEnabled()
    qtbot.waitUntil(lambda: window.session is None, timeout=TIMEOUT_MS)
    logged = [r for r in read_metrics(only_run_dir()) if r["kind"] == "batch"]
    curve = window.plots.batch_time_plot.listDataItems()[0]
    assert curve.xData.tolist() == list(range(1, 26))
    assert curve.yData == pytest.approx([r["batch_time_s"] * 1000 for r in logged])
    assert window.plots.training.loss_raw_curve.yData == pytest.approx([r["loss"] for r in logged])
    assert window.plots.training.eval_curve.xData.tolist() == [10, 20, 25]
    assert window.plots.training.norm_curves[0].yData == pytest.approx(  # the angles' default view
        [np.linalg.norm(r["rotation_angles"][0]) for r in logged])
    status = window.status
    assert status.device.text() == "device: cpu"
    assert status.progress.value() == 25 and status.progress.maximum() == 25
    assert status.progress_text.text().startswith("step 25 / 25 · epoch ")
    assert status.throughput.text() == f"{logged[-1]['tokens_per_s']:,.0f} tok/s"
    assert status.memory.text() == f"mem {format_bytes(logged[-1]['memory_bytes'])}"
    assert window.toolbar.start_action.isEnabled()
    assert run_meta(only_run_dir())["status"] == "finished"


def test_pause_resume_stop_from_the_toolbar(qtbot, make_window):
    window = make_window()
    start_and_wait_for(qtbot, window, 3)
    toolbar = window.toolbar
    with qtbot.waitSignal(window.session.worker.event_reported, timeout=TIMEOUT_MS,
                          check_params_cb=lambda event: event.event == "paused") as paused:
        toolbar.pause_action.trigger()
    assert toolbar.pause_action.text() == "Resume"
    # Everything trained before the pause has been delivered by now: the count must not grow while paused.
    qtbot.waitUntil(lambda: plotted(window) == paused.args[0].step, timeout=TIMEOUT_MS)
    with qtbot.waitSignal(window.session.worker.event_reported, timeout=TIMEOUT_MS,
                          check_params_cb=lambda event: event.event == "resumed") as resumed:
        toolbar.pause_action.trigger()
    assert resumed.args[0].step == paused.args[0].step  # not a single batch trained while paused
    # qtbot's wait returns when the worker emits; the window's (queued) slots for both events run a moment later.
    qtbot.waitUntil(lambda: toolbar.pause_action.text() == "Pause", timeout=TIMEOUT_MS)
    qtbot.waitUntil(lambda: plotted(window) >= paused.args[0].step + 3, timeout=TIMEOUT_MS)
    assert window.status.eta.text() != "ETA –"  # estimating while it trains
    stop_and_wait(qtbot, window)
    assert window.session is None and toolbar.start_action.isEnabled()
    assert run_meta(only_run_dir())["status"] == "stopped"
    # A stopped run has nothing left to estimate: no ETA frozen at its last value.
    qtbot.waitUntil(lambda: window.status.eta.text() == "ETA –", timeout=TIMEOUT_MS)


def test_keyboard_shortcuts(make_window):
    toolbar = make_window().toolbar
    assert toolbar.start_action.shortcut().toString() == "Ctrl+R"
    # Ctrl+P first: the menu shows it, and it pauses even from a text field (where Space types).
    assert [s.toString() for s in toolbar.pause_action.shortcuts()] == ["Ctrl+P", "Space"]
    assert toolbar.stop_action.shortcut().toString() == "Ctrl+."
    assert [toolbar.mode_actions[mode].shortcut().toString() for mode in Mode] == ["Ctrl+1", "Ctrl+2", "Ctrl+3"]


def test_a_mode_click_mid_run_changes_the_following_batches_and_marks_every_plot(qtbot, make_window):
    window = make_window()
    start_and_wait_for(qtbot, window, 3)
    with qtbot.waitSignal(window.session.worker.mode_changed, timeout=TIMEOUT_MS) as changed:
        window.toolbar.mode_actions[Mode.GEOMETRIC].trigger()
    change = changed.args[0]
    assert (change.mode, change.previous_mode) == ("geometric", "geometric_fast")
    qtbot.waitUntil(lambda: plotted(window) >= change.step + 2, timeout=TIMEOUT_MS)
    # While it trains, the (locked) panel shows the run's settings, the live change included.
    assert window.panel.editor("run", "mode").raw_value() is Mode.GEOMETRIC
    assert window.run_actions.checked_mode() is Mode.GEOMETRIC
    stop_and_wait(qtbot, window)
    batches = [r for r in read_metrics(only_run_dir()) if r["kind"] == "batch"]
    assert {r["mode"] for r in batches if r["step"] < change.step} == {"geometric_fast"}
    assert {r["mode"] for r in batches if r["step"] >= change.step} == {"geometric"}
    window.plots.redraw()
    shown = window.plots.current_tab().plots
    assert all([m.x for m in plot.mode_marks.marks] == [change.step - 0.5] for plot in shown)
    assert [s.mode for s in window.plots.series.segments] == ["geometric_fast", "geometric"]
    # The change was that run's: the next run starts from the user's settings, and the status bar says so.
    assert window.panel.editor("run", "mode").raw_value() is Mode.GEOMETRIC_FAST
    assert window.run_actions.checked_mode() is Mode.GEOMETRIC_FAST
    assert "Settings panel is back to your settings (that run's own: mode)" in window.status.currentMessage()


def test_penalty_weight_entered_mid_run_reaches_the_trainer(qtbot, make_window):
    window = make_window()
    start_and_wait_for(qtbot, window, 3)
    with qtbot.waitSignal(window.session.worker.mode_changed, timeout=TIMEOUT_MS) as changed:
        window.toolbar.penalty_edit.setText("0.5")
        window.toolbar.penalty_edit.editingFinished.emit()
    assert changed.args[0].penalty_weight == 0.5 and changed.args[0].mode == "geometric_fast"
    # qtbot's wait returns when the worker emits; the window's (queued) slot runs a moment later.
    qtbot.waitUntil(lambda: bool(window.plots.series.mode_changes), timeout=TIMEOUT_MS)
    window.plots.redraw()
    assert window.plots.batch_time_plot.mode_marks.marks[0].label == "Geometric fast  w=0.5"
    stop_and_wait(qtbot, window)


def test_closing_mid_run_stops_the_thread_and_closes_the_log_as_stopped(qtbot, make_window):
    window = make_window()
    start_and_wait_for(qtbot, window, 3)
    thread = window.session.worker_thread
    window.close()
    assert not thread.isRunning()
    assert window.session is None
    assert run_meta(only_run_dir())["status"] == "stopped"
    # The log was flushed: every batch that was plotted is in it.
    assert len([r for r in read_metrics(only_run_dir()) if r["kind"] == "batch"]) >= plotted(window)


def test_a_failing_run_shows_a_dialog_keeps_the_plots_and_allows_a_new_start(qtbot, make_window, monkeypatch):
    from geogui.engine import trainer as trainer_module

    original_run = trainer_module.Trainer.run

    def run_then_break(self):
        for event in original_run(self):
            yield event
            if isinstance(event, BatchRecord) and event.step == 4:
                raise RuntimeError("simulated failure")

    monkeypatch.setattr(trainer_module.Trainer, "run", run_then_break)
    window = make_window()
    with qtbot.waitSignal(window.plots.redrawn, timeout=TIMEOUT_MS, check_params_cb=lambda n: n == 4):
        window.start_run()
    qtbot.waitUntil(lambda: window.session is None, timeout=TIMEOUT_MS)
    box = window.error_box
    assert isinstance(box, QMessageBox) and box.isVisible() and box.text() == "RuntimeError: simulated failure"
    assert plotted(window) == 4  # the data stays
    assert window.toolbar.start_action.isEnabled()
    box.close()


def test_a_bad_data_file_is_reported_in_a_dialog(qtbot, make_window, tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    window = make_window()
    window.panel.editor("data", "path").line.setText(str(empty))
    assert window.start_run()
    qtbot.waitUntil(lambda: window.session is None, timeout=TIMEOUT_MS)
    assert window.error_box.isVisible() and window.error_box.text() == f"{empty}: file is empty"
    assert window.toolbar.start_action.isEnabled()
    window.error_box.close()


def test_a_new_start_clears_the_plots(qtbot, make_window):
    window = make_window()
    start_and_wait_for(qtbot, window, 3)
    with qtbot.waitSignal(window.session.worker.mode_changed, timeout=TIMEOUT_MS):
        window.toolbar.mode_actions[Mode.STANDARD].trigger()
    stop_and_wait(qtbot, window)
    window.plots.redraw()
    marks = window.plots.batch_time_plot.mode_marks
    assert plotted(window) >= 3 and marks.marks
    assert window.start_run()
    assert plotted(window) == 0 and not marks.marks and not marks.bands and not window.plots.series.segments
    curve = window.plots.batch_time_plot.listDataItems()[0]
    assert curve.yData is None or len(curve.yData) == 0
    stop_and_wait(qtbot, window)


def test_settings_persist_through_the_config_dir(qtbot, make_window):
    window = make_window(settings_store.load_settings().settings, persist=True)
    window.panel.editor("run", "batch_size").line.setText("8")
    window.toolbar.mode_actions[Mode.STANDARD].trigger()
    window.close()
    loaded = settings_store.load_settings()
    assert loaded.notice is None
    assert loaded.settings.run.batch_size == 8 and loaded.settings.run.mode is Mode.STANDARD
    again = make_window(loaded.settings, persist=True)
    assert again.panel.editor("run", "batch_size").raw_value() == "8"
    assert again.run_actions.checked_mode() is Mode.STANDARD


def test_presets_save_and_load_from_the_dock(make_window):
    window = make_window()
    window.panel.editor("run", "steps").line.setText("123")
    assert window.presets.save("short")
    assert [window.presets.combo.itemText(i) for i in range(window.presets.combo.count())] == ["short"]
    window.panel.editor("run", "steps").line.setText("999")
    window.presets.combo.activated.emit(0)
    assert window.panel.settings().run.steps == 123
    window.panel.editor("run", "batch_size").line.setText("0")
    assert not window.presets.save("broken")  # an invalid form is not saved
    assert "Fix the settings" in window.status.currentMessage()


def test_menus_use_mac_roles_and_about_does_not_block(make_window):
    window = make_window()
    roles = {action.text(): action.menuRole() for action in window.findChildren(QAction)}
    assert roles["About geogui"] == QAction.MenuRole.AboutRole
    assert roles["Quit"] == QAction.MenuRole.QuitRole
    assert roles["Settings"] == QAction.MenuRole.NoRole  # the dock toggle must not become Preferences
    window.show_about()
    assert window.about_box.isVisible()
    assert "torch: " in window.about_box.text() and "Qt: " in window.about_box.text()
    window.about_box.close()


def test_the_window_opens_inside_a_small_screen(make_window):
    """On a screen smaller than the preferred 1500×950 (a 1280×720 laptop; the offscreen screen is
    smaller still) the whole window, status bar included, is on the screen."""
    window = make_window()
    free = window.screen().availableGeometry()
    assert free.width() < 1500 or free.height() < 950  # the case this test is about
    assert free.contains(window.frameGeometry())
