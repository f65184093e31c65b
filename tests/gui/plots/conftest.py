"""The board most plot tests draw on: shown at 1000×700, sized for a run of the usual eight named
experts, with its timer stopped (the tests call redraw() themselves). A test module that needs data
in it overrides `board`, asking for this one."""

from __future__ import annotations

import pytest
from shiboken6 import delete, isValid

from geogui.gui.plots.board import PlotBoard

NAMES = ("E0", "E1", "E2", "E3", "G0", "G1", "G2", "G3")


@pytest.fixture
def empty_board(qtbot):
    """The board before any run (what the window shows at launch)."""
    board = PlotBoard()
    board.timer.stop()
    board.resize(1000, 700)
    qtbot.addWidget(board)
    board.show()
    yield board
    # pytest-qt closes it and asks Qt to delete it later, which needs an event loop these tests never
    # run: delete it now. Else every test's board (its plots hold one another in cycles through Qt)
    # stays, and a folder's worth of them makes each full garbage collection take seconds.
    if isValid(board):
        delete(board)


@pytest.fixture
def board(empty_board):
    empty_board.start_run(8, 4, NAMES)
    return empty_board
