"""The settings panel while a run trains here: it shows the run's settings (locked, live changes
included) and goes back to what the user had when the run ends, saying so: a live change or a
resumed run's settings never become the next run's settings unseen."""

from __future__ import annotations

from geogui.gui.main_window import MainWindow

from .conftest import tiny_settings
from .test_runs import record

TIMEOUT_MS = 60_000


def make(qtbot, **run) -> MainWindow:
    window = MainWindow(tiny_settings(**run), persist=False)
    qtbot.addWidget(window)
    window.show()
    return window


def test_a_live_penalty_weight_is_the_runs_only_and_the_next_start_uses_the_users(qtbot):
    window = make(qtbot, steps=100_000, penalty_weight=0.001)
    # No ghost wakes and no expert is reported dead in this run: either notice would take the status
    # bar from the message this test reads (on a loaded machine the run gets that far).
    settings = window.panel.settings()
    window.panel.set_settings(settings.model_copy(update={
        "model": settings.model.model_copy(update={"ghost_patience": 100_000}),
        "run": settings.run.model_copy(update={"dead_expert_steps": 0})}))
    assert window.start_run()
    qtbot.waitUntil(lambda: len(window.plots.series) >= 2, timeout=TIMEOUT_MS)
    with qtbot.waitSignal(window.session.worker.mode_changed, timeout=TIMEOUT_MS):
        window.toolbar.penalty_edit.setText("0.05")
        window.toolbar.penalty_edit.editingFinished.emit()
    assert "0.05: for this run only" in window.status.currentMessage()
    assert window.panel.settings().run.penalty_weight == 0.05  # the locked panel shows the run's settings
    with qtbot.waitSignal(window.session.ended, timeout=TIMEOUT_MS):
        window.toolbar.stop_action.trigger()
    assert window.panel.settings().run.penalty_weight == 0.001
    assert window.toolbar.penalty_edit.text() == "0.001"
    assert "back to your settings (that run's own: rotation penalty weight)" in window.status.currentMessage()


def test_resume_says_it_fills_the_panel_and_gives_back_what_the_user_typed(qtbot):
    window = make(qtbot)
    run = record("to-resume", steps=20, stop_at=8)
    window.runs_panel.refresh()
    window.panel.set_raw("run", "batch_size", "7")  # typed by the user, not yet used
    window.panel.set_raw("run", "steps", "many")  # not even valid: it must come back too
    assert window.resume_run(run)
    assert "the Settings panel shows its settings" in window.status.currentMessage()
    assert window.panel.editor("run", "batch_size").raw_value() != "7"
    qtbot.waitUntil(lambda: window.session is None, timeout=TIMEOUT_MS)
    assert window.panel.editor("run", "batch_size").raw_value() == "7"
    assert window.panel.editor("run", "steps").raw_value() == "many" and not window.panel.is_valid()
    assert "back to your settings" in window.status.currentMessage()
