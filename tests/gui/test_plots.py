from __future__ import annotations

import numpy as np
import pytest

from geogui.engine.metrics import EvalRecord, ModeChange
from geogui.gui.plots.board import ANGLE_NORMS, PlotBoard

from .conftest import synthetic_record

NAMES = ("E0", "E1", "E2", "E3", "G0", "G1", "G2", "G3")


@pytest.fixture
def board(qtbot):
    board = PlotBoard()
    board.timer.stop()  # these tests drive redraw() themselves
    board.resize(1000, 700)
    qtbot.addWidget(board)
    board.show()
    board.start_run(8, 4, NAMES)
    return board


def test_curves_get_the_series_data(board):
    records = [synthetic_record(step) for step in range(1, 31)]
    board.append(records + [EvalRecord(30, 2.0, 7.4)])
    board.redraw()
    steps = np.arange(1, 31)
    batch_curve = board.batch_time_plot.listDataItems()[0]
    assert batch_curve.xData.tolist() == steps.tolist()
    assert batch_curve.yData == pytest.approx([r.batch_time_s * 1000 for r in records])
    assert board.loss_raw_curve.yData == pytest.approx([r.loss for r in records])
    assert board.loss_ema_curve.yData[-1] == pytest.approx(board.series.loss_ema.view()[-1])
    assert board.eval_curve.xData.tolist() == [30] and board.eval_curve.yData.tolist() == [2.0]
    assert board.angle_curves[2][3].yData == pytest.approx([r.rotation_angles[2, 3] for r in records])

    board.tabs.setCurrentIndex(2)  # Experts: drawn when shown
    loads = board.expert_plot.listDataItems()
    assert [item.name() for item in loads] == list(NAMES)
    assert loads[5].yData == pytest.approx([r.expert_load[5] for r in records])
    assert [item.name() for item in board.ghost_plot.listDataItems()] == ["G0", "G1", "G2", "G3"]


def test_plots_share_the_x_axis_and_reduce_their_own_data(board):
    plots = [plot for tab in board._tabs for plot in tab.plots]
    assert len(plots) == 8
    for plot in plots:
        assert plot.downsampleMode()[:2] == (1, False)  # pyqtgraph's own (lossy at the tail) is off
        assert not plot.clipToViewMode()
        if plot is not board.batch_time_plot:
            assert plot.getViewBox().linkedView(0) is board.batch_time_plot.getViewBox()


def test_angle_selector_norms_and_single_presentation(board):
    records = [synthetic_record(step) for step in range(1, 11)]
    board.append(records)
    board.angle_view.setCurrentIndex(board.angle_view.findData(ANGLE_NORMS))
    board.redraw()
    assert all(curve.isVisible() for curve in board.norm_curves)
    assert not any(curve.isVisible() for curves in board.angle_curves for curve in curves)
    assert board.norm_curves[1].yData == pytest.approx([np.linalg.norm(r.rotation_angles[1]) for r in records])
    board.angle_view.setCurrentIndex(board.angle_view.findData(3))
    board.redraw()
    visible = [(p, i) for p, curves in enumerate(board.angle_curves) for i, c in enumerate(curves) if c.isVisible()]
    assert visible == [(3, 0), (3, 1), (3, 2), (3, 3)]


def test_smoothing_slider_defaults_to_0_6_and_zero_is_off(board):
    assert board.smoothing.value() == 0.6 and board.series.smoothing == 0.6
    board.append([synthetic_record(step) for step in range(1, 21)])
    board.redraw()
    assert board.loss_ema_curve.yData[0] == board.loss_raw_curve.yData[0]  # debiased: no ramp from 0
    assert not np.allclose(board.loss_ema_curve.yData, board.loss_raw_curve.yData)
    board.smoothing.setValue(0.0)
    board.redraw()
    assert board.loss_ema_curve.yData == pytest.approx(board.loss_raw_curve.yData)
    # The raw loss stays drawn, faint, beneath the smoothed one.
    items = board.loss_plot.listDataItems()
    assert items.index(board.loss_raw_curve) < items.index(board.loss_ema_curve)
    assert board.loss_raw_curve.opts["pen"].color().alpha() < 255 == board.loss_ema_curve.opts["pen"].color().alpha()


def test_mode_change_draws_a_marker_and_a_segment_on_every_plot(board):
    board.append([synthetic_record(step) for step in range(1, 11)])
    board.add_mode_change(ModeChange(11, "standard", 0.001, "geometric_fast", 0.001))
    board.append([synthetic_record(step, mode="standard") for step in range(11, 21)])
    board.redraw()
    plots = [plot for tab in board._tabs for plot in tab.plots]
    for plot in board._tabs[0].plots:  # the visible tab's plots; the others catch up when shown
        marks = board.mode_marks(plot)
        assert [(m.x, m.label) for m in marks.marks] == [(10.5, "Standard")]
        assert [(b.left, b.right) for b in marks.bands] == [(0.5, 10.5), (10.5, 20.5)]
    for index in range(board.tabs.count()):
        board.tabs.setCurrentIndex(index)
    assert all(board.mode_marks(plot).marks for plot in plots)
    board.tabs.setCurrentIndex(0)
    assert "Geometric fast" in board.batch_time_plot.titleLabel.text
    assert "Standard" in board.batch_time_plot.titleLabel.text
    board.start_run(8, 4, NAMES)  # a new run clears everything
    assert not any(board.mode_marks(plot).marks or board.mode_marks(plot).bands for plot in plots)
    assert len(board.series) == 0
    assert all(plot.listDataItems()[0].xData is None or not len(plot.listDataItems()[0].xData)
               for plot in (board.batch_time_plot, board.loss_plot))


def test_soak_three_thousand_redraws(board, qtbot):
    rng = np.random.default_rng(0)
    step, modes = 0, ["geometric_fast", "standard", "geometric"]
    redraws = []
    board.redrawn.connect(redraws.append)
    for i in range(3000):
        if i % 500 == 499:
            mode = modes[(i // 500) % 3]
            board.add_mode_change(ModeChange(step + 1, mode, 0.001, "x", 0.001))
        if i % 700 == 0:
            board.angle_view.setCurrentIndex(i // 700 % board.angle_view.count())
        if i % 1000 == 999:
            board.tabs.setCurrentIndex((i // 1000) % board.tabs.count())
        count = int(rng.integers(1, 6))
        board.append([synthetic_record(step + k + 1, mode=board.series.segments[-1].mode if board.series.segments
                                       else "geometric_fast", rng=rng) for k in range(count)])
        step += count
        board.redraw()
        if i % 100 == 0:
            qtbot.wait(0)  # let Qt paint now and then, as the timer would
    assert len(redraws) >= 3000 and redraws[-1] == step == len(board.series)
    shown = board._tabs[board.tabs.currentIndex()].plots[0]
    assert len(board.mode_marks(shown).bands) == len(board.series.segments) >= 4


def test_the_angle_view_choice_survives_a_new_run(board):
    board.angle_view.setCurrentIndex(board.angle_view.findData(ANGLE_NORMS))
    board.start_run(8, 4, NAMES)
    assert board.angle_view.currentData() == ANGLE_NORMS
    assert all(curve.isVisible() for curve in board.norm_curves)
