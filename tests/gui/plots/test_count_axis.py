"""A counted x axis (steps, tokens) has whole-number ticks at any zoom; wall time keeps fractions."""

from __future__ import annotations

import pytest



def tick_values(plot, low: float, high: float) -> list[float]:
    axis = plot.getAxis("bottom")
    return [value for _spacing, values in axis.tickValues(low, high, axis.width()) for value in values]


@pytest.mark.parametrize(("low", "high"), [(0.0, 3.0), (1.2, 2.9), (0.0, 12.0), (100.0, 103.5)])
def test_step_ticks_are_whole_numbers_when_zoomed_in(board, low, high):
    for plot in board.all_plots:
        values = tick_values(plot, low, high)
        assert values and all(value == int(value) for value in values), values
        assert len(set(values)) == len(values)


def test_tokens_count_too_but_wall_time_keeps_fractional_ticks(board):
    board.x_axis.setCurrentIndex(board.x_axis.findData("tokens"))
    assert all(value == int(value) for value in tick_values(board.training.loss_plot, 0.0, 3.0))
    board.x_axis.setCurrentIndex(board.x_axis.findData("wall_time"))
    assert any(value != int(value) for value in tick_values(board.training.loss_plot, 0.0, 3.0))
    board.x_axis.setCurrentIndex(board.x_axis.findData("step"))
    assert all(value == int(value) for value in tick_values(board.training.loss_plot, 0.0, 3.0))


def test_wide_ranges_keep_pyqtgraphs_round_ticks(board):
    values = tick_values(board.training.loss_plot, 0.0, 1000.0)
    assert 200.0 in values and 500.0 in values
