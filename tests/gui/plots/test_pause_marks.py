"""Pauses are marked on every plot of the run: live, opened from disk and compared."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QPointF

from geogui import paths
from geogui.engine.metrics import ModeChange, RunEvent
from geogui.gui.plotdata.plot_marks import PauseMark
from geogui.gui.plots.board import PlotBoard
from geogui.rundir.meta import RunStatus
from geogui.rundir.runlog import RunLog

from tests.gui.conftest import synthetic_record, tiny_settings

NAMES = tuple(f"E{i}" for i in range(4)) + tuple(f"G{i}" for i in range(4))


@pytest.fixture
def board(qtbot):
    board = PlotBoard()
    qtbot.addWidget(board)
    board.start_run(8, 4, NAMES)
    return board


def _pause_then_switch(board: PlotBoard) -> None:
    """Ten batches, a pause after step 10 during which the mode is changed, ten more batches."""
    board.append([synthetic_record(step) for step in range(1, 11)])
    board.add_event(RunEvent(10, "paused", "paused after step 10"))
    board.add_mode_change(ModeChange(11, "standard", 0.001, "geometric_fast", 0.001))
    board.add_event(RunEvent(10, "resumed", "resumed at step 11"))
    board.append([synthetic_record(step, mode="standard") for step in range(11, 21)])


def test_a_pause_is_marked_on_every_plot_at_its_step_clear_of_the_labels(board, qtbot):
    board.resize(1280, 720)
    board.show()
    qtbot.waitExposed(board)
    _pause_then_switch(board)
    for index in range(board.tabs.count()):
        board.tabs.setCurrentIndex(index)
        board.redraw()
        assert all(plot.mode_marks.pauses == (PauseMark(10, 10.5, 10.5),) for plot in board.plot_tabs[index].plots)
    board.tabs.setCurrentIndex(0)
    board.grab()
    for plot in board.training.shown_plots:
        marks = plot.mode_marks
        (pause, glyph), = marks.labels.drawn_pauses
        line_x = plot.getViewBox().mapViewToScene(QPointF(10.5, 0)).x()
        assert glyph.center().x() == pytest.approx(line_x, abs=1)
        assert plot.getViewBox().sceneBoundingRect().contains(glyph)
        assert marks.label_rects() and not any(glyph.intersects(rect) for _mark, rect in marks.label_rects())


def test_on_the_wall_time_axis_a_pause_spans_the_clock_between_its_batches(board):
    _pause_then_switch(board)
    board.x_axis.setCurrentIndex(board.x_axis.findData("wall_time"))
    pause, = board.batch_time_plot.mode_marks.pauses
    assert (pause.left, pause.right) == pytest.approx((0.10, 0.11))  # the batches' clocks at steps 10 and 11


def test_a_second_pause_with_no_batch_between_is_one_mark(board):
    board.append([synthetic_record(step) for step in range(1, 6)])
    for event in ("paused", "resumed", "paused"):
        board.add_event(RunEvent(5, event, ""))
    board.add_event(RunEvent(5, "nonfinite_loss", "loss is nan"))
    board.redraw()
    assert board.series.pauses == [5]
    assert len(board.batch_time_plot.mode_marks.pauses) == 1


def test_the_live_runs_pause_reaches_the_plots(window):
    window.plots.start_run(8, 4, NAMES)
    window.plots.append([synthetic_record(step) for step in range(1, 8)])
    window.controller.on_event(RunEvent(7, "paused", "paused after step 7"))
    window.plots.redraw()
    assert window.plots.batch_time_plot.mode_marks.pauses == (PauseMark(7, 7.5, 7.5),)


def write_run_with_pause(name: str, pause_after: int, steps: int):
    settings = tiny_settings(steps=steps)
    model = settings.model
    path = paths.runs_dir() / name
    log = RunLog(path, settings)
    for step in range(1, steps + 1):
        log.write(synthetic_record(step, presentations=model.presentations, angles=model.rotation_dimensions,
                                   ghosts=model.num_ghost_experts))
        if step == pause_after:
            log.write(RunEvent(step, "paused", f"paused after step {step}"))
            log.write(RunEvent(step, "resumed", f"resumed at step {step + 1}"))
    log.close(RunStatus.FINISHED)
    return path


def test_an_opened_run_shows_the_pauses_in_its_log(window):
    path = write_run_with_pause("paused-once", pause_after=6, steps=12)
    assert window.open_run(path)
    window.plots.redraw()
    assert window.plots.series.pauses == [6]
    assert all(plot.mode_marks.pauses == (PauseMark(6, 6.5, 6.5),) for plot in window.plots.training.shown_plots)


def test_a_compared_run_read_from_disk_keeps_its_pauses(window):
    paused = write_run_with_pause("paused-once", pause_after=4, steps=8)
    other = write_run_with_pause("paused-later", pause_after=7, steps=8)
    assert window.open_run(other)
    panel = window.runs_panel
    panel.refresh()
    panel.set_ticked(paused)
    panel.set_ticked(other)
    assert window.plots.comparing
    window.plots.redraw()
    strips = {strip.label: strip for strip in window.plots.batch_time_plot.mode_marks.strips}
    assert strips["paused-once"].pauses == (PauseMark(4, 4.5, 4.5),)
    assert strips["paused-later"].pauses == (PauseMark(7, 7.5, 7.5),)
