from __future__ import annotations

import numpy as np
import pytest

from geogui.engine.metrics import EvalRecord, ModeChange
from geogui.gui.plots.tabs import ALL_ANGLES, ANGLE_NORMS

from tests.gui.conftest import synthetic_record
from tests.gui.plots.conftest import NAMES



def test_curves_get_the_series_data(board):
    training = board.training
    records = [synthetic_record(step) for step in range(1, 31)]
    training.angle_view.setCurrentIndex(training.angle_view.findData(ALL_ANGLES))
    board.append(records + [EvalRecord(30, 2.0, 7.4)])
    board.redraw()
    steps = np.arange(1, 31)
    batch_curve = board.batch_time_plot.listDataItems()[0]
    assert batch_curve.xData.tolist() == steps.tolist()
    assert batch_curve.yData == pytest.approx([r.batch_time_s * 1000 for r in records])
    assert training.loss_raw_curve.yData == pytest.approx([r.loss for r in records])
    assert training.loss_ema_curve.yData[-1] == pytest.approx(board.series.loss_ema.view()[-1])
    assert training.eval_curve.xData.tolist() == [30] and training.eval_curve.yData.tolist() == [2.0]
    assert training.angle_curves[2][3].yData == pytest.approx([r.rotation_angles[2, 3] for r in records])

    board.tabs.setCurrentIndex(board.plot_tabs.index(board.experts))  # drawn when shown
    loads = board.experts.expert_plot.listDataItems()
    assert [item.name() for item in loads] == list(NAMES)
    assert loads[5].yData == pytest.approx([r.expert_load[5] for r in records])
    assert [item.name() for item in board.experts.ghost_plot.listDataItems()] == ["G0", "G1", "G2", "G3"]


def test_plots_share_the_x_axis_and_reduce_their_own_data(board):
    plots = board.all_plots
    # The Training tab: batch time, loss, answer accuracy, angles; Loss terms: two; Routing: the heatmap
    # over steps, entropy, overflow, spread; Rotation: one, under its maps.
    assert len(plots) == 16 and len(board.routing.plots) == 4 and len(board.rotation.plots) == 1
    for plot in plots:
        assert plot.downsampleMode()[:2] == (1, False)  # pyqtgraph's own (lossy at the tail) is off
        assert not plot.clipToViewMode()
        if plot is not board.batch_time_plot:
            assert plot.getViewBox().linkedView(0) is board.batch_time_plot.getViewBox()


def test_angle_selector_norms_and_single_presentation(board):
    training = board.training
    records = [synthetic_record(step) for step in range(1, 11)]
    board.append(records)
    training.angle_view.setCurrentIndex(training.angle_view.findData(ANGLE_NORMS))
    board.redraw()
    assert all(curve.isVisible() for curve in training.norm_curves)
    assert not any(curve.isVisible() for curves in training.angle_curves for curve in curves)
    assert training.norm_curves[1].yData == pytest.approx([np.linalg.norm(r.rotation_angles[1]) for r in records])
    training.angle_view.setCurrentIndex(training.angle_view.findData(3))
    board.redraw()
    visible = [(p, i) for p, curves in enumerate(training.angle_curves) for i, c in enumerate(curves) if c.isVisible()]
    assert visible == [(3, 0), (3, 1), (3, 2), (3, 3)]


def test_smoothing_slider_defaults_to_0_6_and_zero_is_off(board):
    training = board.training
    assert board.smoothing.value() == 0.6 and board.series.smoothing == 0.6
    board.append([synthetic_record(step) for step in range(1, 21)])
    board.redraw()
    assert training.loss_ema_curve.yData[0] == training.loss_raw_curve.yData[0]  # debiased: no ramp from 0
    assert not np.allclose(training.loss_ema_curve.yData, training.loss_raw_curve.yData)
    board.smoothing.setValue(0.0)
    board.redraw()
    assert training.loss_ema_curve.yData == pytest.approx(training.loss_raw_curve.yData)
    # The raw loss stays drawn, faint, beneath the smoothed one.
    items = training.loss_plot.listDataItems()
    assert items.index(training.loss_raw_curve) < items.index(training.loss_ema_curve)
    raw, smoothed = training.loss_raw_curve, training.loss_ema_curve
    assert raw.opts["pen"].color().alpha() < 255 == smoothed.opts["pen"].color().alpha()


def test_mode_change_draws_a_marker_and_a_segment_on_every_plot(board):
    board.append([synthetic_record(step) for step in range(1, 11)])
    board.add_mode_change(ModeChange(11, "standard", 0.001, "geometric_fast", 0.001))
    board.append([synthetic_record(step, mode="standard") for step in range(11, 21)])
    board.redraw()
    plots = board.all_plots
    for plot in board.training.shown_plots:  # the visible tab's plots; the others catch up when shown
        marks = plot.mode_marks
        assert [(m.x, m.label) for m in marks.marks] == [(10.5, "Standard")]
        assert [(b.left, b.right) for b in marks.bands] == [(0.5, 10.5), (10.5, 20.5)]
    for index in range(board.tabs.count()):
        board.tabs.setCurrentIndex(index)
    assert all(plot.mode_marks.marks for plot in plots)
    board.tabs.setCurrentIndex(0)
    assert "Geometric fast" in board.batch_time_plot.titleLabel.text
    assert "Standard" in board.batch_time_plot.titleLabel.text
    board.start_run(8, 4, NAMES)  # a new run clears everything
    assert not any(plot.mode_marks.marks or plot.mode_marks.bands for plot in plots)
    assert len(board.series) == 0
    assert all(plot.listDataItems()[0].xData is None or not len(plot.listDataItems()[0].xData)
               for plot in (board.batch_time_plot, board.training.loss_plot))


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
            board.training.angle_view.setCurrentIndex(i // 700 % board.training.angle_view.count())
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
    shown = board.current_tab().plots[0]
    assert len(shown.mode_marks.bands) == len(board.series.segments) >= 4


def test_the_angle_view_choice_survives_a_new_run(board):
    training = board.training
    training.angle_view.setCurrentIndex(training.angle_view.findData(ANGLE_NORMS))
    board.start_run(8, 4, NAMES)
    assert training.angle_view.currentData() == ANGLE_NORMS
    assert all(curve.isVisible() for curve in training.norm_curves)


def test_a_new_run_while_comparing_keeps_every_plots_comparison_curves(board):
    from geogui.gui.plotdata.run_series import RunSeries
    from geogui.gui.plots.overlays import Overlay

    other = RunSeries(8, 4)
    other.append([synthetic_record(step) for step in range(1, 6)])
    board.set_overlays([Overlay("other", other), Overlay("this")])
    board.start_run(8, 4, NAMES)  # another run opened, or started, while both stay ticked
    board.append([synthetic_record(step) for step in range(1, 11)])
    for index in range(board.tabs.count()):
        board.redraw_tab(index)
    for plot in board.all_plots:
        curves = plot.comparison.curves
        assert len(curves) == 2 and all(curve in plot.listDataItems() for curve in curves), plot.base_title
        assert [len(curve.xData) for curve in curves] == [5, 10], plot.base_title


def test_experts_of_a_run_that_does_not_name_them_get_the_usual_names(board):
    board.start_run(8, 4)  # e.g. a run opened without its meta.json
    board.append([synthetic_record(step) for step in range(1, 6)])
    board.tabs.setCurrentIndex(board.plot_tabs.index(board.experts))
    assert [curve.name() for curve in board.experts.expert_curves] == list(NAMES)
    assert [curve.name() for curve in board.experts.ghost_curves] == ["G0", "G1", "G2", "G3"]


def test_a_tab_shown_while_training_is_hidden_keeps_its_x_range_growing(board, qtbot):
    board.append([synthetic_record(step) for step in range(1, 51)])
    board.redraw()  # the Training tab, shown first
    for tab in (board.loss_terms, board.routing, board.rotation):
        board.tabs.setCurrentIndex(board.plot_tabs.index(tab))
        last = len(board.series)
        board.append([synthetic_record(step) for step in range(last + 1, last + 51)])
        board.redraw()
        plot = tab.plots[-1]
        qtbot.waitUntil(lambda: plot.getViewBox().viewRange()[0][1] >= last + 50, timeout=5000)
