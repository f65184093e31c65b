"""The Routing tab: a layer × expert heatmap of the window's mean utilization, an expert × step heatmap of
the chosen layer, each layer's entropy and overflow and the utilization spread as curves, a notice of dead
experts, a note for runs that have nothing to show, and compared runs' curves."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF

from geogui.engine.metrics import EventKind, ModeChange, RunEvent
from geogui.gui.plotdata.routing_series import GEOMETRIC_ONLY_NOTE, OLD_RUN_NOTE
from geogui.gui.plotdata.run_series import RunSeries
from geogui.gui.plotdata.run_source import RunShape
from geogui.gui.plots.overlays import Overlay
from geogui.gui.plots.routing import STEP_AXIS_NOTE
from geogui.rundir.reader import parse_columns

from tests.gui.conftest import synthetic_record
from tests.gui.plotdata.test_routing_series import LAYERS, metrics_text, routed, utilization_at
from tests.gui.plots.conftest import NAMES

DEAD = RunEvent(30, EventKind.EXPERT_DEAD, "layer 2: expert E3 has had no tokens for 30 steps")


def show_routing(board) -> None:
    board.tabs.setCurrentIndex(board.plot_tabs.index(board.routing))
    board.redraw()


def values(curve) -> np.ndarray:
    return np.asarray(curve.yData, dtype=np.float64)


def test_the_tab_follows_experts(board):
    index = board.plot_tabs.index(board.routing)
    assert board.tabs.tabText(index) == "Routing"
    assert index == board.plot_tabs.index(board.experts) + 1


def test_the_layer_by_expert_cells_are_the_window_mean_of_the_records(board):
    records = [routed(step) for step in range(1, 41)]
    board.append(records)
    tab = board.routing
    tab.window_box.setValue(10)
    assert tab.stale
    show_routing(board)
    heatmap = tab.utilization_map
    want = np.mean([r.expert_utilization[:, :6] for r in records[-10:]], axis=0)
    np.testing.assert_allclose(heatmap.values[:, :6], want, rtol=1e-6)
    assert np.isnan(heatmap.values[:, 6:]).all()  # dormant ghosts: grey
    assert heatmap.row_names == ("layer 0", "layer 1", "layer 2", "layer 3") and heatmap.col_names == NAMES
    assert "last 10 steps (to step 40)" in heatmap.titleLabel.text
    assert heatmap.readout_at(3.5, 2.5) == "layer 2 · E3: 0.00 (dead)"
    board.append([routed(41, utilization=np.full((4, 8), 2.0))])  # live: the window moves on
    board.redraw()
    np.testing.assert_allclose(heatmap.values[0, 0], np.mean([r.expert_utilization[0, 0] for r in records[-9:]] + [2]),
                               rtol=1e-6)


def test_the_step_heatmap_shows_the_chosen_layer(board):
    records = [routed(step) for step in range(1, 41)]
    board.append(records)
    show_routing(board)
    tab = board.routing
    assert [tab.layer_box.itemText(i) for i in range(tab.layer_box.count())] == [f"layer {i}" for i in range(4)]
    for layer in (0, 2):
        tab.layer_box.setCurrentIndex(layer)
        board.redraw()
        drawn = tab.step_map.drawn
        assert drawn.cells == 40 and drawn.cell_steps == 1  # a cell per step: 40 steps on ~900 px
        want = np.array([r.expert_utilization[layer] for r in records]).T  # experts × steps
        np.testing.assert_array_equal(drawn.image, want.astype(np.float32))
        assert tab.step_map.titleLabel.text == f"Utilization over steps, layer {layer}"
    assert tab.step_map.readout_at(12.0, 3.5) == "E3 at step 12: 0.00"
    assert board.show_crosshair(tab.step_map, 12.0, 3.5) == "E3 at step 12: 0.00"  # in the board's readout
    assert board.readout.text() == "E3 at step 12: 0.00"


def test_entropy_and_overflow_curves_hold_the_records_values_sharing_x(board):
    records = [routed(step) for step in range(1, 11)]
    records.append(routed(11, "geometric"))
    board.add_mode_change(ModeChange(11, "geometric", 0.001, "geometric_fast", 0.001))
    board.append(records)
    show_routing(board)
    tab = board.routing
    assert tab.entropy_plot.legend.labels() == [f"layer {i}" for i in range(LAYERS)]
    for layer in range(LAYERS):
        entropy = values(tab.entropy_curves[layer])
        assert entropy[:10].tolist() == [float(np.float32(r.routing_entropy[layer])) for r in records[:10]]
        assert np.isnan(entropy[10])  # geometric: no router statistics, a gap
        assert values(tab.overflow_curves[layer])[:10] == pytest.approx([r.layer_overflow[layer] for r in records[:10]])
    assert tab.entropy_curves[0].xData.tolist() == list(range(1, 12))
    for plot in tab.plots[1:]:
        assert plot.getViewBox().linkedView(0) is board.batch_time_plot.getViewBox()
    assert tab.step_map.getViewBox().linkedView(0) is board.batch_time_plot.getViewBox()
    assert [mark.x for mark in tab.step_map.mode_marks.marks] == [10.5]  # the mode switch, on the heatmap too
    spread = values(tab.spread_curve)
    assert spread[0] == pytest.approx(np.mean(np.nanmax(records[0].expert_utilization, axis=1)
                                              - np.nanmin(records[0].expert_utilization, axis=1)))


def test_a_dead_expert_raises_the_notice_until_it_gets_tokens_again(board):
    board.append([routed(step) for step in range(1, 31)])  # layer 2's E3 never gets a token
    board.add_event(DEAD)
    show_routing(board)
    notice = board.routing.dead_notice
    assert notice.isVisible() and notice.text() == "Dead experts: layer 2: E3 dead since step 1"
    utilization = utilization_at(31)
    utilization[2, 3] = 0.5
    board.append([routed(31, utilization=utilization)])
    board.redraw()
    assert not notice.isVisible()


def test_the_main_window_says_a_dead_expert_as_it_says_a_woken_ghost(window):
    window.controller.on_event(DEAD)
    assert window.status.currentMessage() == DEAD.message
    woke = RunEvent(31, EventKind.GHOST_WOKE, "layer 0: ghost expert G0 woke (primary experts saturated)")
    window.controller.on_event(woke)
    assert window.status.currentMessage() == woke.message
    window.plots.tabs.setCurrentIndex(window.plots.plot_tabs.index(window.plots.routing))
    window.plots.redraw()
    assert "layer 2: E3 dead since step 1" in window.plots.routing.dead_notice.text()


def drawn(board) -> list[np.ndarray]:
    tab = board.routing
    curves = [*tab.entropy_curves, *tab.overflow_curves, tab.spread_curve]
    return [np.column_stack([curve.xData, curve.yData]) for curve in curves] + [
        tab.utilization_map.values, tab.step_map.drawn.image]


def test_a_run_opened_from_its_columns_shows_what_it_showed_live(board):
    records = [routed(step) for step in range(1, 21)]
    records.append(ModeChange(21, "geometric", 0.001, "geometric_fast", 0.001))
    records += [routed(step, "geometric") for step in range(21, 26)]
    records.append(DEAD)
    columns = parse_columns(metrics_text(records))
    board.append(records[:20])
    board.add_mode_change(records[20])
    board.append(records[21:26])
    board.add_event(DEAD)
    show_routing(board)
    live, live_notes = drawn(board), (board.routing.note.text(), board.routing.dead_notice.text())
    board.start_run(8, 4, NAMES)
    board.load_columns(columns)
    board.redraw()
    opened = drawn(board)
    assert len(opened) == 2 * LAYERS + 3 and len(opened[0]) == 25
    for live_one, opened_one in zip(live, opened):
        np.testing.assert_allclose(opened_one, live_one, rtol=1e-6, equal_nan=True)
    assert (board.routing.note.text(), board.routing.dead_notice.text()) == live_notes
    assert "geometric step forces routing" in live_notes[0] and "layer 2: E3" in live_notes[1]


def test_an_old_run_opens_with_the_tab_empty_and_a_note(board):
    board.load_columns(parse_columns(metrics_text([synthetic_record(step) for step in range(1, 11)])))
    show_routing(board)
    tab = board.routing
    assert tab.note.isVisible() and tab.note.text() == OLD_RUN_NOTE
    assert tab.utilization_map.values.size == 0 and tab.step_map.drawn.image.size == 0
    assert tab.entropy_curves == [] and tab.layer_box.count() == 0
    assert np.isnan(values(tab.spread_curve)).all()
    board.start_run(8, 4, NAMES)
    board.append([routed(step, "geometric") for step in range(1, 6)])
    board.redraw()
    assert tab.note.text() == GEOMETRIC_ONLY_NOTE


def test_compared_runs_overlay_their_mean_entropy_and_spread_and_the_heatmaps_say_whose_they_are(board):
    board.append([routed(step) for step in range(1, 11)])
    board.run_label = "this"
    other = RunSeries(8, 4)
    other.append([routed(step, utilization=np.ones((4, 8))) for step in range(1, 7)])
    board.set_overlays([Overlay("other", other), Overlay("this")])
    show_routing(board)
    tab = board.routing
    entropy = tab.entropy_plot.comparison.curves
    assert len(entropy) == 2
    assert values(entropy[0]) == pytest.approx([np.mean((np.arange(4) + s % 8) / 8) for s in range(1, 7)])
    assert values(tab.spread_plot.comparison.curves[0]).tolist() == [0.0] * 6  # every expert at its fair share
    assert len(values(tab.spread_plot.comparison.curves[1])) == 10
    assert len(tab.overflow_plot.comparison.curves) == 2
    assert not any(curve.isVisible() for curve in tab.entropy_curves + [tab.spread_curve])
    assert tab.step_map.titleLabel.text == "Utilization over steps, layer 0 — this only"
    assert tab.utilization_map.titleLabel.text.endswith("— this only")
    assert "the heatmaps show this only" in tab.utilization_map.titleLabel.toolTip()
    assert tab.step_map.drawn.cells == 10  # the board's own run, drawn while comparing
    board.set_overlays([])
    board.redraw()
    assert tab.step_map.titleLabel.text == "Utilization over steps, layer 0"
    assert not tab.utilization_map.titleLabel.text.endswith("only")


def test_the_saturation_threshold_is_dashed_on_the_overflow_plot(board):
    board.start_shaped(RunShape(8, 4, NAMES, saturation_threshold=0.05))
    board.append([routed(step) for step in range(1, 11)])
    show_routing(board)
    tab = board.routing
    assert values(tab.threshold_curve).tolist() == [0.05, 0.05]
    assert tab.threshold_curve.xData.tolist() == [1, 10]
    assert tab.overflow_plot.legend.labels() == [*(f"layer {i}" for i in range(4)), "saturation threshold 0.05"]
    low, high = tab.overflow_plot.getViewBox().viewRange()[1]
    assert low <= 0.05 <= high
    board.start_shaped(RunShape(8, 4, NAMES))  # a run whose settings are unknown
    board.append([routed(step) for step in range(1, 11)])
    board.redraw()
    assert tab.threshold_curve.yData is None or not len(tab.threshold_curve.yData)
    assert "saturation threshold 0.05" not in tab.overflow_plot.legend.labels()


def test_on_a_wall_time_axis_the_step_heatmap_is_hidden_and_the_tab_says_why(board):
    board.append([routed(step) for step in range(1, 11)])
    show_routing(board)
    tab = board.routing
    board.x_axis.setCurrentIndex(board.x_axis.findData("wall_time"))
    assert not tab.step_map.isVisible() and STEP_AXIS_NOTE in tab.note.text()
    assert tab.entropy_curves[0].xData.tolist() == pytest.approx([r.wall_time_s for r in
                                                                  [routed(s) for s in range(1, 11)]])
    board.x_axis.setCurrentIndex(board.x_axis.findData("step"))
    assert tab.step_map.isVisible() and not tab.note.isVisible()


def test_the_layer_by_expert_cell_under_the_mouse_is_read_out_under_the_plots(board, qtbot):
    board.append([routed(step) for step in range(1, 11)])
    show_routing(board)
    tab = board.routing
    tab.widget.ci.layout.activate()
    view = tab.utilization_map.getViewBox()
    target = tab.widget.mapFromScene(view.mapViewToScene(QPointF(3.5, 2.5)))

    def moved_onto_the_cell() -> bool:
        # pyqtgraph drops mouse moves that come too soon after the last one: move until one gets through.
        qtbot.mouseMove(tab.widget.viewport(), target)
        return board.readout.text() != " "

    qtbot.waitUntil(moved_onto_the_cell, timeout=3000)
    assert board.readout.text() == "layer 2 · E3: 0.00 (dead)"
    # The stacked plots' mouse follower, told of a move off its plots, says the mouse left them: the
    # readout of the cell stays.
    with qtbot.waitSignal(tab._mouse._proxy.sigDelayed, timeout=2000):
        qtbot.mouseMove(tab.widget.viewport(), target + QPoint(1, 1))
    assert board.readout.text() == "layer 2 · E3: 0.00 (dead)"
