"""Runs compared keep their modes: a strip per run from the plot's one marks item, and each run's mean
batch time per mode in the batch-time title."""

from __future__ import annotations

import re

import numpy as np
import pytest
from PySide6.QtCore import QPointF
from PySide6.QtGui import QColor

from geogui.engine.metrics import ModeChange, RunEvent
from geogui.gui.palette import mode_color
from geogui.gui.plotdata.plot_marks import ModeBand, PauseMark, mode_label
from geogui.gui.plotdata.run_series import RunSeries
from geogui.gui.plots.board import PlotBoard
from geogui.gui.plots.overlays import Overlay

from tests.gui.conftest import synthetic_record

NAMES = tuple(f"E{i}" for i in range(4)) + tuple(f"G{i}" for i in range(4))


@pytest.fixture
def board(qtbot):
    board = PlotBoard()
    qtbot.addWidget(board)
    board.start_run(8, 4, NAMES)
    return board


def _history(feed, switch, steps: int, history: list[tuple[int, str]], seed: int = 0):
    """Batches 1..`steps`, in the mode of `history` [(first step, mode), ...]; each later entry is a switch.
    Returns the records fed."""
    records = []
    for index, (first, mode) in enumerate(history):
        last = history[index + 1][0] - 1 if index + 1 < len(history) else steps
        if index:
            switch(ModeChange(first, mode, 0.001, history[index - 1][1], 0.001))
        chunk = [synthetic_record(step, mode=mode, rng=np.random.default_rng(seed + step))
                 for step in range(first, last + 1)]
        feed(chunk)
        records += chunk
    return records


A_HISTORY = [(1, "standard"), (16, "geometric")]  # run "a": read from disk
B_HISTORY = [(1, "geometric_fast"), (11, "standard"), (21, "geometric_fast")]  # run "b": the board's own


def _compare(board: PlotBoard):
    other = RunSeries(8, 4)
    a = _history(other.append, other.add_mode_change, 30, A_HISTORY, seed=1000)
    b = _history(board.append, board.add_mode_change, 25, B_HISTORY)
    board.set_overlays([Overlay("a", other), Overlay("b")])
    return a, b


def test_each_compared_run_keeps_its_modes_in_a_strip_of_its_own(board, qtbot):
    board.resize(1280, 720)
    board.show()
    qtbot.waitExposed(board)
    _compare(board)
    board.grab()  # paints: the strips are laid out by the paint
    for plot in board.training.shown_plots:
        marks = plot.mode_marks
        a, b = marks.strips
        colors = [curve.opts["pen"].color().name() for curve in plot.comparison.curves]
        assert (a.label, a.color, b.label, b.color) == ("a", colors[0], "b", colors[1])
        assert a.bands == (ModeBand(0.5, 15.5, mode_color("standard")), ModeBand(15.5, 30.5, mode_color("geometric")))
        assert b.bands == (ModeBand(0.5, 10.5, mode_color("geometric_fast")), ModeBand(10.5, 20.5, mode_color("standard")),
                           ModeBand(20.5, 25.5, mode_color("geometric_fast")))
        assert (a.switches, b.switches) == ((15.5,), (10.5, 20.5))
        assert not marks.bands and not marks.marks  # no tints stacked over each other
        # One row each, a above b, along the bottom of the view, across it, apart.
        view = plot.getViewBox().sceneBoundingRect()
        (_, row_a), (_, row_b) = marks.drawn_strips
        assert row_a.bottom() <= row_b.top() and row_b.bottom() <= view.bottom() + 0.5
        assert view.bottom() - row_a.top() < 0.35 * view.height()
        assert row_a.left() == pytest.approx(view.left(), abs=1) and row_a.right() == pytest.approx(view.right(), abs=1)
        names = [strip.label for strip, _rect in marks.labels.drawn_names]
        assert names in (["a", "b"], [])  # named when there is room


def test_the_strips_are_painted_in_each_runs_modes(board, qtbot):
    board.resize(1280, 720)
    board.show()
    qtbot.waitExposed(board)
    _compare(board)
    # Every plot's x follows the batch-time plot's: let it fit the runs first.
    qtbot.waitUntil(lambda: board.batch_time_plot.getViewBox().viewRange()[0][1] > 25, timeout=5000)
    board.tabs.setCurrentIndex(board.plot_tabs.index(board.throughput))  # flat curves, away from the strips
    plot, widget = board.throughput.memory_plot, board.throughput.widget
    qtbot.waitUntil(lambda: plot.getViewBox().viewRange()[0][1] > 25, timeout=5000)
    image = widget.grab().toImage()
    (_, row_a), (_, row_b) = plot.mode_marks.drawn_strips

    def color_at(step: float, row) -> str:
        x = plot.getViewBox().mapViewToScene(QPointF(step, 0)).x()
        point = widget.mapFromScene(QPointF(x, row.center().y()))
        return _dominant(image.pixelColor(point.x(), point.y()))

    assert [color_at(step, row_a) for step in (8, 25)] == ["standard", "geometric"]
    assert [color_at(step, row_b) for step in (5, 15, 23)] == ["geometric_fast", "standard", "geometric_fast"]


def _dominant(color) -> str:
    """The mode whose colour, blended over white, is nearest."""
    def distance(mode: str) -> float:
        base = QColor(mode_color(mode))
        return sum(abs(c - (255 - (255 - b) * 150 / 255)) for c, b in zip(
            (color.red(), color.green(), color.blue()), (base.red(), base.green(), base.blue())))

    return min(("standard", "geometric", "geometric_fast"), key=distance)


def _plain(title: str) -> list[str]:
    """The title's lines without their markup."""
    return [re.sub("<[^>]+>", "", line) for line in title.split("<br>")]


def test_the_batch_time_title_gives_each_runs_mean_per_mode(board):
    a, b = _compare(board)
    board.redraw()

    def mean(records, mode) -> float:
        times = [r.batch_time_s * 1000 for r in records if r.mode == mode]
        return sum(times) / len(times)

    title = board.batch_time_plot.titleLabel.text
    assert _plain(title) == [
        f"Batch time — mean per mode: ■ a: Standard {mean(a, 'standard'):.1f} ms"
        f" · Geometric {mean(a, 'geometric'):.1f} ms",
        f"■ b: Geometric fast {mean(b, 'geometric_fast'):.1f} ms · Standard {mean(b, 'standard'):.1f} ms",
    ]
    for mode in ("standard", "geometric", "geometric_fast"):
        assert f"color:{mode_color(mode)}'>{mode_label(mode)} " in title


def _scene_items(board: PlotBoard) -> int:
    return sum(len(plot.scene().items()) for plot in board.all_plots[:1])


def _alternate(board: PlotBoard, switches: int) -> None:
    modes = ["standard", "geometric"]
    history = [(1 + 5 * k, modes[k % 2]) for k in range(switches + 1)]
    _history(board.append, board.add_mode_change, 5 * (switches + 1), history)


def test_comparing_adds_no_scene_items_per_switch(board):
    other = RunSeries(8, 4)
    other.append([synthetic_record(step) for step in range(1, 6)])
    _alternate(board, 1)
    board.set_overlays([Overlay("other", other), Overlay("this")])
    for index in range(board.tabs.count()):
        board.redraw_tab(index)
    before = _scene_items(board)
    board.start_run(8, 4, NAMES)
    _alternate(board, 60)
    for index in range(board.tabs.count()):
        board.redraw_tab(index)
    assert _scene_items(board) == before
    # The heatmap over steps shows the board's own run while comparing: its own marks, not a strip per run.
    step_map = board.routing.step_map
    assert all(len(plot.mode_marks.strips[1].switches) == 60 for plot in board.all_plots if plot is not step_map)
    assert not step_map.mode_marks.strips and len(step_map.mode_marks.marks) == 60


def test_the_readout_names_the_mode_of_the_run_under_the_cursor(board):
    _compare(board)
    board.redraw()
    plot = board.batch_time_plot
    a_curve, b_curve = plot.comparison.curves
    y_a = float(a_curve.yData[list(a_curve.xData).index(18)])
    text = board.show_crosshair(plot, 18, y_a)
    assert text.startswith("a · step 18") and text.endswith("mode geometric")
    y_b = float(b_curve.yData[list(b_curve.xData).index(18)])
    text = board.show_crosshair(plot, 18, y_b)
    assert text.startswith("b · step 18") and text.endswith("mode standard")


def test_a_compared_runs_pauses_are_in_its_strip_in_its_colour(board, qtbot):
    board.resize(1280, 720)
    board.show()
    qtbot.waitExposed(board)
    other = RunSeries(8, 4)
    other.append([synthetic_record(step) for step in range(1, 11)])
    other.add_event(RunEvent(6, "paused", "paused after step 6"))
    board.append([synthetic_record(step) for step in range(1, 11)])
    board.set_overlays([Overlay("other", other), Overlay("this")])
    board.grab()
    marks = board.batch_time_plot.mode_marks
    assert marks.strips[0].pauses == (PauseMark(6, 6.5, 6.5),) and marks.strips[1].pauses == ()
    (pause, glyph), = marks.labels.drawn_pauses
    (_, row), _ = marks.drawn_strips
    assert pause.step == 6 and row.top() - 0.5 <= glyph.center().y() <= row.bottom() + 0.5


def test_the_compared_runs_legend_sits_above_the_data_not_over_it(board, qtbot):
    board.resize(1280, 720)
    board.show()
    _compare(board)
    board.redraw()
    for plot in board.training.shown_plots:
        legend, data = plot.comparison.legend, plot.getViewBox()
        assert legend.isVisible() and legend.labels() == ["a", "b"]
        # Laid out on the next pass of the event loop, as the plot's own legend is.
        qtbot.waitUntil(lambda: not legend.sceneBoundingRect().intersects(data.sceneBoundingRect()), timeout=2000)
        assert data.sceneBoundingRect().left() < legend.sceneBoundingRect().center().x() < data.sceneBoundingRect().right()
