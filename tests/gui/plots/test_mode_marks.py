"""Mode segments and changes: one item per plot, whatever the number of switches; labels never overlap."""

from __future__ import annotations

import itertools

import pytest
from PySide6.QtCore import QPointF

from geogui.engine.metrics import ModeChange
from geogui.gui.plots.board import PlotBoard
from geogui.gui.plots.overlays import Overlay

from tests.gui.conftest import synthetic_record

NAMES = tuple(f"E{i}" for i in range(4)) + tuple(f"G{i}" for i in range(4))
MODES = ["standard", "geometric_fast", "geometric"]


@pytest.fixture
def board(qtbot):
    board = PlotBoard()
    qtbot.addWidget(board)
    board.start_run(8, 4, NAMES)
    return board


def _train_with_switches(board: PlotBoard, switches: int, gap: int, steps: int) -> None:
    """`switches` mode changes `gap` steps apart (alternating penalty weights too), then steady training."""
    step, mode = 1, "geometric_fast"
    for k in range(switches):
        board.append([synthetic_record(s, mode=mode) for s in range(step, step + gap)])
        step += gap
        previous, mode = mode, MODES[k % 3] if MODES[k % 3] != mode else MODES[(k + 1) % 3]
        board.add_mode_change(ModeChange(step, mode, 0.001 * (k + 1), previous, 0.001 * k))
    board.append([synthetic_record(s, mode=mode) for s in range(step, step + steps)])
    board.redraw()


def _scene_items(board: PlotBoard) -> int:
    return sum(len(plot.scene().items()) for plot in board.all_plots[:1])


def _visit_every_tab(board: PlotBoard) -> None:
    for index in range(board.tabs.count()):
        board.tabs.setCurrentIndex(index)
    board.tabs.setCurrentIndex(0)


def test_switches_add_no_scene_items(board):
    _train_with_switches(board, 1, 10, 10)
    _visit_every_tab(board)
    before = _scene_items(board)
    board.start_run(8, 4, NAMES)
    _train_with_switches(board, 60, 10, 10)
    _visit_every_tab(board)
    assert _scene_items(board) == before
    assert all(len(plot.mode_marks.marks) == 60 for plot in board.all_plots)


@pytest.mark.parametrize("size", [(1280, 720), (1600, 1000)])
@pytest.mark.parametrize("switches,gap", [(1, 50), (3, 2), (8, 30), (20, 3), (20, 1)])
def test_mode_labels_never_overlap(board, qtbot, size, switches, gap):
    board.resize(*size)
    board.show()
    qtbot.waitExposed(board)
    _train_with_switches(board, switches, gap, steps=40)
    board.grab()  # paints: the labels are laid out by the paint
    drawn = 0
    for plot in board.training.shown_plots:
        rects = [rect for _mark, rect in plot.mode_marks.label_rects()]
        drawn += len(rects)
        view = plot.getViewBox().sceneBoundingRect()
        for rect in rects:
            assert view.contains(rect), (rect, view)
        for a, b in itertools.combinations(rects, 2):
            assert not a.intersects(b), (a, b)
    assert drawn >= len(board.training.shown_plots)  # at least the first change is labelled on every plot


def test_a_label_sits_right_of_its_line_inside_its_own_segment(board, qtbot):
    board.resize(1280, 720)
    board.show()
    qtbot.waitExposed(board)
    _train_with_switches(board, 1, 100, steps=100)
    board.grab()
    plot = board.batch_time_plot
    (mark, rect), = plot.mode_marks.label_rects()
    line_x = plot.getViewBox().mapViewToScene(QPointF(mark.x, 0)).x()
    assert line_x < rect.left() < line_x + 10
    assert mark.label == "Standard  w=0.001"


def test_comparing_draws_strips_instead_of_tints_and_showing_the_run_again_brings_them_back(board):
    _train_with_switches(board, 2, 10, 10)
    marks = board.batch_time_plot.mode_marks
    board.set_overlays([Overlay("other", board.series), Overlay("this")])
    assert marks.isVisible() and not marks.bands and not marks.marks and len(marks.strips) == 2
    board.set_overlays([])
    assert marks.isVisible() and len(marks.marks) == 2 and not marks.strips
