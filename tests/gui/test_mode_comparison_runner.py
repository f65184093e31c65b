"""Run → Compare Modes… in the window (offscreen): three runs trained in turn through the usual worker,
ticked and overlaid, then the summary table; Stop mid-way ends the comparison cleanly."""

from __future__ import annotations

import pytest
from PySide6.QtGui import QGuiApplication

from geogui import paths
from geogui.gui.main_window import MainWindow
from geogui.gui.widgets.mode_comparison_dialogs import ComparisonTableDialog
from geogui.rundir.comparison_summary import SUMMARY_MD
from geogui.rundir.meta import RunStatus, read_meta

from .conftest import tiny_settings

TIMEOUT_MS = 120_000


@pytest.fixture
def window(qtbot):
    window = MainWindow(tiny_settings(steps=4, eval_interval=2, checkpoint_interval=0), persist=False)
    qtbot.addWidget(window)
    window.show()
    return window


def _runs() -> list:
    return sorted(path for path in paths.runs_dir().iterdir() if (path / "meta.json").exists())


def _choose(window, qtbot, equal_time=False, steps=3, seconds=None):
    comparison = window.mode_comparison
    assert comparison.action.isEnabled()
    comparison.action.trigger()
    dialog = comparison.dialog
    assert dialog.isVisible()  # opened, not exec()
    dialog.steps.setValue(steps)
    if equal_time:
        dialog.equal_time.setChecked(True)
        dialog.seconds.setValue(seconds)
    dialog.start_button.click()


def test_compare_modes_trains_three_runs_overlays_them_and_shows_the_table(qtbot, window):
    _choose(window, qtbot, steps=3)
    runner = window.mode_comparison.runner
    assert runner.active and window.session is not None  # trains in the worker thread
    assert not window.mode_comparison.action.isEnabled()
    # A mode click or a new penalty weight would mix two objectives in one of the compared runs.
    assert not any(action.isEnabled() for action in window.run_actions.modes.values())
    assert not window.run_actions.penalty.isEnabled()
    with qtbot.waitSignal(runner.finished, timeout=TIMEOUT_MS) as finished:
        pass
    assert all(action.isEnabled() for action in window.run_actions.modes.values())
    assert window.run_actions.penalty.isEnabled()
    runs = _runs()
    assert len(runs) == 3 and not runner.active
    metas = {read_meta(path).initial_mode: read_meta(path) for path in runs}
    assert set(metas) == {"standard", "geometric_fast", "geometric"}
    assert all(m.status is RunStatus.FINISHED and m.steps_done == 3 for m in metas.values())
    assert len({m.group for m in metas.values()}) == 1
    assert sorted(window.runs_panel.ticked()) == runs
    window.plots.redraw()
    assert window.plots.comparing and len(window.plots.overlays) == 3
    curves = [plot.comparison.curves for plot in window.plots.all_plots if plot is window.plots.batch_time_plot][0]
    assert len(curves) == 3
    table = window.mode_comparison.table
    assert isinstance(table, ComparisonTableDialog) and table.isVisible() and not table.isModal()
    assert table.table.rowCount() == 3
    assert [table.table.item(row, 0).text() for row in range(3)] == ["standard", "geometric_fast", "geometric"]
    assert table.table.horizontalHeaderItem(5).text().startswith("answer accuracy")
    assert table.table.item(0, 5).text() == "–"  # no accuracy records yet
    table.copy_markdown()
    assert QGuiApplication.clipboard().text() == finished.args[0].to_markdown()
    group = read_meta(runs[0]).group
    assert (paths.runs_dir() / group / SUMMARY_MD).is_file()


def test_stop_mid_way_ends_the_comparison_cleanly(qtbot, window):
    _choose(window, qtbot, steps=100_000)
    runner = window.mode_comparison.runner
    qtbot.waitUntil(lambda: window.current_run is not None and len(window.plots.series) >= 2, timeout=TIMEOUT_MS)
    with qtbot.waitSignal(runner.ended_early, timeout=TIMEOUT_MS) as ended:
        window.stop_run()
    assert "stopped" in ended.args[0]
    qtbot.waitUntil(lambda: window.session is None, timeout=TIMEOUT_MS)
    runs = _runs()
    assert len(runs) == 1 and read_meta(runs[0]).status is RunStatus.STOPPED  # the next mode never started
    assert not runner.active and window.mode_comparison.action.isEnabled()
    assert window.mode_comparison.table is None


def test_equal_wall_time_stops_each_run_at_its_budget_and_goes_on(qtbot, window, monkeypatch):
    import itertools

    from geogui.rundir import mode_comparison

    ticks = itertools.count()  # a minute per reading, in the worker thread: each run stops after one batch
    monkeypatch.setattr(mode_comparison, "wall_clock", lambda: 60.0 * next(ticks))
    _choose(window, qtbot, equal_time=True, steps=1000, seconds=30)
    with qtbot.waitSignal(window.mode_comparison.runner.finished, timeout=TIMEOUT_MS):
        pass
    metas = [read_meta(path) for path in _runs()]
    assert len(metas) == 3
    assert all(m.status is RunStatus.STOPPED and m.model_extra["stopped_at_budget"] for m in metas)
    assert all(m.steps_done == 1 and m.settings["run"]["steps"] == 1000 for m in metas)
    assert window.mode_comparison.table.table.rowCount() == 3
