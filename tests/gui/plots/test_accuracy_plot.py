"""The answer accuracy under the loss: live records, a run read from disk, and runs without it."""

from __future__ import annotations

import json

import numpy as np

from geogui.engine.log_lines import batch_line
from geogui.engine.metrics import EvalRecord, ModeChange
from geogui.engine.samples import AccuracyRecord
from geogui.gui.plotdata.run_series import RunSeries
from geogui.gui.plots.overlays import Overlay
from geogui.rundir.reader import parse_columns

from tests.gui.conftest import synthetic_record



def _drawn(board) -> list[tuple[list[float], list[float]]]:
    return [(list(c.xData), list(c.yData)) for c in board.training.accuracy.curves
            if c.isVisible() and c.xData is not None and len(c.xData)]


def _listed(board) -> bool:
    return board.training.accuracy_plot.legend.getLabel(board.training.accuracy.curves[0]) is not None \
        if board.training.accuracy.curves else False


def test_live_accuracies_are_plotted_in_percent_one_line_per_mode_segment(board):
    board.append([synthetic_record(step) for step in range(1, 11)] + [
        EvalRecord(10, 2.0, 7.4), AccuracyRecord(10, "geometric_fast", 1, 4, 0, 0.1)])
    board.add_mode_change(ModeChange(11, "standard", 0.001, "geometric_fast", 0.001))
    board.append([synthetic_record(step, mode="standard") for step in range(11, 21)] + [
        AccuracyRecord(15, "standard", 2, 4, 0, 0.1), AccuracyRecord(20, "standard", 3, 4, 0, 0.1)])
    board.redraw()
    assert _drawn(board) == [([10.0], [25.0]), ([15.0, 20.0], [50.0, 75.0])]
    assert _listed(board)
    # Compared, a run's accuracy holds until the next one, and starts again in a new mode.
    per_row = board.series.accuracy_per_row()
    assert np.isnan(per_row[:9]).all() and per_row[9] == 0.25 and np.isnan(per_row[10:14]).all()
    assert per_row[-1] == 0.75


def test_an_opened_run_plots_its_accuracy_lines(board):
    lines = [batch_line(synthetic_record(step)) for step in range(1, 7)]
    lines.insert(3, json.dumps(AccuracyRecord(3, "geometric_fast", 1, 2, 1, 0.2).to_json()))
    lines.append(json.dumps(AccuracyRecord(6, "geometric_fast", 2, 2, 0, 0.2).to_json()))
    board.load_columns(parse_columns(("\n".join(lines) + "\n").encode()))
    board.redraw()
    assert _drawn(board) == [([3.0, 6.0], [50.0, 100.0])]


def test_the_accuracy_axis_stays_0_to_100_percent_even_when_every_answer_is_wrong(board):
    board.append([synthetic_record(step) for step in range(1, 5)] + [AccuracyRecord(4, "geometric_fast", 0, 8, 8, 0)])
    board.redraw()
    board.training.accuracy_plot.refit()
    low, high = board.training.accuracy_plot.viewRange()[1]
    assert low <= 0 and high >= 100


def test_a_run_without_accuracy_draws_no_curve_and_no_legend_entry(board):
    lines = [batch_line(synthetic_record(step)) for step in range(1, 7)]
    lines.append(json.dumps(EvalRecord(6, 2.0, 7.4).to_json()))
    columns = parse_columns(("\n".join(lines) + "\n").encode())
    board.load_columns(columns)
    board.redraw()
    assert columns.eval_step.tolist() == [6.0] and len(board.series) == 6  # it opens as before
    assert _drawn(board) == [] and not _listed(board)


def test_a_compared_runs_accuracy_is_shown_even_when_the_boards_own_run_has_none(board):
    board.start_run(8, 4)
    board.append([synthetic_record(step) for step in range(1, 7)])  # no accuracy of its own
    other = RunSeries(8, 4)
    other.append([synthetic_record(step) for step in range(1, 7)] + [AccuracyRecord(6, "geometric_fast", 3, 4, 0, 0.1)])
    board.redraw()
    assert not board.training.accuracy_plot.isVisible()
    board.set_overlays([Overlay("other", other), Overlay("this")])
    board.redraw()
    assert board.training.accuracy_plot.isVisible()
    drawn = [c for c in board.training.accuracy_plot.comparison.curves if c.yData is not None and len(c.yData)]
    assert any(np.nanmax(c.yData) == 75.0 for c in drawn)
    board.set_overlays([])
    board.redraw()
    assert not board.training.accuracy_plot.isVisible()  # back to the own run, which has none
