"""The loss jumps where its objective changes (into or out of geometric): the plot says so there."""

from __future__ import annotations

import pytest

from geogui.engine.metrics import ModeChange
from geogui.gui.plots.board import PlotBoard

from tests.gui.conftest import synthetic_record

NAMES = ("E0", "E1", "E2", "E3", "G0", "G1", "G2", "G3")


@pytest.fixture
def board(qtbot):
    board = PlotBoard()
    board.timer.stop()  # these tests drive redraw() themselves
    board.resize(1000, 800)
    qtbot.addWidget(board)
    board.show()
    board.start_run(8, 4, NAMES)
    return board


def train(board, *modes: str, steps: int = 20) -> None:
    step, previous = 1, None
    for mode in modes:
        if previous is not None:
            board.add_mode_change(ModeChange(step, mode, 0.001, previous, 0.001))
        board.append([synthetic_record(s, mode=mode) for s in range(step, step + steps)])
        step, previous = step + steps, mode
    board.redraw()


def test_entering_geometric_says_what_the_loss_is_from_there(board, qtbot):
    train(board, "standard", "geometric", "standard")
    notes = board.training.objective_notes
    assert [note.x for note in notes.notes] == [20.5, 40.5]
    first, second = (" ".join(note.lines) for note in notes.notes)
    assert "mean of 8 presentations" in first and "orthogonality" in first and "specialization" in first
    assert second == "Standard objective: cross-entropy + load balance"
    qtbot.waitUntil(lambda: len(notes.drawn) == 2, timeout=2000)  # painted, and neither over the other
    assert notes.isVisible()
    tooltip = board.training.loss_plot.titleLabel.toolTip()
    assert "Standard: loss = cross-entropy + load balance" in tooltip
    assert "Geometric: loss = cross-entropy of the mean prediction of 8 presentations" in tooltip


def test_a_run_that_never_trains_geometric_has_no_note(board, qtbot):
    train(board, "standard", "geometric_fast", "standard")
    assert board.training.objective_notes.notes == ()
    tooltip = board.training.loss_plot.titleLabel.toolTip()
    assert "Geometric fast: loss = cross-entropy + load balance + rotation penalty" in tooltip
    assert "orthogonality" not in tooltip


def test_a_new_run_clears_the_notes(board):
    train(board, "standard", "geometric")
    board.start_run(8, 4, NAMES)
    board.redraw()
    assert board.training.objective_notes.notes == ()
