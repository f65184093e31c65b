"""The rotation-angle plot: a readable default, a legend that lists what is drawn and never covers it,
angles told apart by line style or colour, and the readout naming curves as the legend does."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from geogui.gui.plots.tabs import ALL_ANGLES, ANGLE_NORMS

from tests.gui.conftest import synthetic_record
from tests.gui.plots.conftest import NAMES

ANGLE_KEYS = ["d0", "d1", "d2", "d3"]


@pytest.fixture
def board(board):
    board.append([synthetic_record(step) for step in range(1, 21)])
    board.redraw()
    return board


def choose(board, view) -> None:
    training = board.training
    training.angle_view.setCurrentIndex(training.angle_view.findData(view))
    board.redraw()


def drawn(board) -> list:
    return [item for item in board.training.angle_plot.listDataItems() if item.isVisible()]


def test_the_default_view_is_the_norm_per_presentation(board):
    training = board.training
    assert training.angle_view.currentData() == ANGLE_NORMS
    assert drawn(board) == training.norm_curves
    assert training.angle_plot.legend.labels() == list(NAMES)


def test_all_angles_a_colour_per_presentation_and_a_line_style_per_angle_with_a_key(board):
    choose(board, ALL_ANGLES)
    training = board.training
    assert len(drawn(board)) == 32
    for curves in training.angle_curves:
        assert len({curve.opts["pen"].color().name() for curve in curves}) == 1
        assert len({curve.opts["pen"].style() for curve in curves}) == 4
    styles = [curve.opts["pen"].style() for curve in training.angle_curves[0]]
    assert styles[0] == Qt.PenStyle.SolidLine
    assert all([c.opts["pen"].style() for c in curves] == styles for curves in training.angle_curves)
    colours = {curves[0].opts["pen"].color().name() for curves in training.angle_curves}
    assert len(colours) == 8
    assert training.angle_plot.legend.labels() == list(NAMES) + ANGLE_KEYS


def test_one_presentation_draws_its_angles_in_distinct_colours_and_lists_only_them(board):
    choose(board, 5)
    training = board.training
    assert drawn(board) == training.angle_curves[5]
    assert len({curve.opts["pen"].color().name() for curve in training.angle_curves[5]}) == 4
    assert training.angle_plot.legend.labels() == ANGLE_KEYS
    assert "G1" in training.angle_plot.titleLabel.text
    choose(board, ANGLE_NORMS)  # and back: the presentations again
    assert training.angle_plot.legend.labels() == list(NAMES)


@pytest.mark.parametrize("view", [ANGLE_NORMS, ALL_ANGLES, 2])
def test_no_legend_covers_its_plots_data(board, qtbot, view):
    choose(board, view)
    for plot in (board.training.loss_plot, board.training.angle_plot):
        legend, data = plot.legend, plot.getViewBox()
        qtbot.waitUntil(lambda: legend.sceneBoundingRect().width() > 0, timeout=2000)
        assert not legend.sceneBoundingRect().intersects(data.sceneBoundingRect())
        assert data.sceneBoundingRect().contains(legend.sceneBoundingRect().center().x(), data.sceneBoundingRect().top())


def test_the_readout_names_an_angle_as_the_legend_does(board):
    choose(board, 2)
    angles = board.series.angles.view()
    text = board.show_crosshair(board.training.angle_plot, 10.0, float(angles[9, 2 * 4 + 1]))
    assert "E2 d1" in text
