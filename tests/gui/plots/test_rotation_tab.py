"""The Rotation tab: maps of the presentations' angles, of how alike their rotations are and of how alike
their hidden states are, at the step under the mouse on any plot (else a held step, else the latest),
with a note instead of data where a step has none, the board's own run while comparing, and old runs
opening."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt

from geogui.engine.log_lines import batch_line
from geogui.engine.metrics import ModeChange
from geogui.gui.plotdata.rotation_similarity import rotation_similarity
from geogui.gui.plotdata.run_series import RunSeries
from geogui.gui.plots.overlays import Overlay
from geogui.gui.plots.rotation_maps import GEOMETRIC_ONLY, NO_BATCHES, NO_ROTATION, NOT_RECORDED
from geogui.rundir.reader import parse_columns

from tests.gui.conftest import synthetic_record
from tests.gui.plots.conftest import NAMES

P, R = 8, 4
LATER_FIELDS = ("util", "entropy", "overflow", "hsim")  # what older runs' batch lines do not have


def geometric(step: int):
    """A geometric batch with a similarity of its own: symmetric, 1 on the diagonal, 3 decimals (as logged)."""
    rng = np.random.default_rng(1000 + step)
    half = np.round(rng.random((P, P)), 3)
    similarity = np.triu(half, 1) + np.triu(half, 1).T + np.eye(P)
    return dataclasses.replace(synthetic_record(step, mode="geometric", rng=rng), hidden_similarity=similarity)


def train(board) -> dict[int, object]:
    """Steps 1-10 geometric_fast, 11-20 geometric, 21-30 standard; returns the records by step."""
    fast = [synthetic_record(s) for s in range(1, 11)]
    geo = [geometric(s) for s in range(11, 21)]
    std = [synthetic_record(s, mode="standard") for s in range(21, 31)]
    board.append(fast)
    board.add_mode_change(ModeChange(11, "geometric", 0.001, "geometric_fast", 0.001))
    board.append(geo)
    board.add_mode_change(ModeChange(21, "standard", 0.001, "geometric", 0.001))
    board.append(std)
    return {r.step: r for r in fast + geo + std}


def show_rotation(board, qtbot=None) -> None:
    """The Rotation tab drawn; with `qtbot`, after the Training tab (shown first, as in the window) has
    fitted the x range every plot follows."""
    if qtbot is not None:
        board.redraw()
        view = board.batch_time_plot.getViewBox()
        qtbot.waitUntil(lambda: view.viewRange()[0][1] >= board.series.step.view()[-1], timeout=5000)
    board.tabs.setCurrentIndex(board.plot_tabs.index(board.rotation))
    board.redraw()


def f32(values) -> np.ndarray:
    return np.asarray(values, dtype=np.float32)


def note(heatmap, board) -> str:
    shown = board.rotation.maps.notes[heatmap]
    return shown.text if shown.item.isVisible() else ""


def test_the_tab_is_the_last_and_shows_the_latest_step_live(board):
    assert board.tabs.tabText(board.tabs.count() - 1) == "Rotation" and board.plot_tabs[-1] is board.rotation
    maps = board.rotation.maps
    assert note(maps.angle_map, board) == NO_BATCHES
    board.append([synthetic_record(s) for s in range(1, 6)])
    show_rotation(board)
    assert board.rotation.header.text == "Latest: step 5"
    np.testing.assert_array_equal(maps.angle_map.values, f32(synthetic_record(5).rotation_angles))
    assert maps.angle_map.row_names == NAMES and maps.angle_map.col_names == ("d0", "d1", "d2", "d3")
    board.append([synthetic_record(s) for s in range(6, 8)])
    board.redraw()  # live: the newest batch
    assert board.rotation.header.text == "Latest: step 7"
    np.testing.assert_array_equal(maps.angle_map.values, f32(synthetic_record(7).rotation_angles))


def test_the_maps_show_the_step_hovered_on_another_plot_and_the_latest_once_it_leaves(board):
    records = train(board)
    show_rotation(board)
    maps = board.rotation.maps
    board.show_crosshair(board.training.loss_plot, 14.2, 0.0)  # a plot of another tab
    assert board.rotation.header.text == "At step 14"
    angles = records[14].rotation_angles
    np.testing.assert_array_equal(maps.angle_map.values, f32(angles))
    np.testing.assert_allclose(maps.rotation_map.values, rotation_similarity(f32(angles)), rtol=0, atol=1e-6)
    np.testing.assert_array_equal(maps.hidden_map.values, f32(records[14].hidden_similarity))
    assert not any(note(heatmap, board) for heatmap in maps.heatmaps)
    assert "(at step 14)" in maps.angle_map.readout_at(1.5, 2.5)  # the cell readout says the step too
    board.hide_crosshair(board.training)
    assert board.rotation.header.text == "Latest: step 30"


def test_outside_geometric_the_hidden_map_says_so_instead_of_showing_another_steps_values(board):
    records = train(board)
    show_rotation(board)
    maps = board.rotation.maps
    board.show_crosshair(board.batch_time_plot, 5, 0.0)  # geometric_fast: angles, no hidden states
    np.testing.assert_array_equal(maps.angle_map.values, f32(records[5].rotation_angles))
    assert note(maps.hidden_map, board) == GEOMETRIC_ONLY and np.isnan(maps.hidden_map.values).all()
    board.show_crosshair(board.batch_time_plot, 25, 0.0)  # standard: no rotation either
    assert note(maps.angle_map, board) == NO_ROTATION and np.isnan(maps.angle_map.values).all()
    assert note(maps.rotation_map, board) == NO_ROTATION and np.isnan(maps.rotation_map.values).all()
    assert note(maps.hidden_map, board) == GEOMETRIC_ONLY
    assert maps.hidden_map.row_names == NAMES  # the map keeps its presentations under the note
    board.show_crosshair(board.batch_time_plot, 20, 0.0)  # back on a geometric step: the data again
    np.testing.assert_array_equal(maps.hidden_map.values, f32(records[20].hidden_similarity))
    assert not note(maps.hidden_map, board)


def test_a_mouse_move_over_the_tabs_own_plot_picks_the_step(board, qtbot):
    train(board)
    show_rotation(board, qtbot)
    plot = board.rotation.step_plot
    view = plot.getViewBox()
    qtbot.waitUntil(lambda: view.viewRange()[0][1] >= 30, timeout=5000)  # it follows the fitted x range
    board.rotation.widget.scene().sigMouseMoved.emit(view.mapViewToScene(QPointF(12.0, 0.5)))
    qtbot.waitUntil(lambda: board.rotation.header.text == "At step 12", timeout=5000)
    assert plot.crosshair.isVisible() and board.readout.text().startswith("step 12")
    outside = view.sceneBoundingRect().topLeft() - QPointF(30, 30)  # off the plot
    board.rotation.widget.scene().sigMouseMoved.emit(outside)
    qtbot.waitUntil(lambda: board.rotation.header.text == "Latest: step 30", timeout=5000)


def test_a_click_on_the_plot_holds_its_step_until_latest_lets_go(board, qtbot):
    records = train(board)
    show_rotation(board, qtbot)
    tab = board.rotation
    view = tab.step_plot.getViewBox()
    qtbot.waitUntil(lambda: view.viewRange()[0][1] >= 30, timeout=5000)
    point = tab.widget.mapFromScene(view.mapViewToScene(QPointF(8.0, 0.5)))
    qtbot.mouseClick(tab.widget.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(point.x(), point.y()))
    assert tab.held_step == pytest.approx(8.0, abs=0.5)
    board.hide_crosshair(tab)  # the mouse has gone to the maps: the held step stays
    assert tab.header.text == "Held at step 8" and tab.latest_button.isEnabled()
    np.testing.assert_array_equal(tab.maps.angle_map.values, f32(records[8].rotation_angles))
    board.show_crosshair(board.batch_time_plot, 15, 0.0)  # a hovered step comes first
    assert tab.header.text == "At step 15"
    board.hide_crosshair(board.training)
    assert tab.header.text == "Held at step 8"
    tab.latest_button.click()
    assert tab.header.text == "Latest: step 30" and not tab.latest_button.isEnabled()


def test_on_a_wall_time_axis_the_hovered_x_is_the_step_at_that_time(board):
    records = train(board)
    board.x_axis.setCurrentIndex(board.x_axis.findData("wall_time"))
    show_rotation(board)
    board.show_crosshair(board.training.loss_plot, records[17].wall_time_s, 0.0)
    assert board.rotation.header.text == "At step 17"


def test_an_old_run_and_a_standard_run_open_with_notes_instead_of_data(board):
    records = [synthetic_record(s) for s in range(1, 4)] + [geometric(s) for s in range(4, 8)]
    lines = [json.dumps({k: v for k, v in json.loads(batch_line(r)).items() if k not in LATER_FIELDS})
             for r in records]
    lines.insert(3, json.dumps(ModeChange(4, "geometric", 0.001, "geometric_fast", 0.001).to_json()))
    board.load_columns(parse_columns(("\n".join(lines) + "\n").encode()))
    show_rotation(board)
    maps = board.rotation.maps
    assert board.rotation.header.text == "Latest: step 7"
    np.testing.assert_array_equal(maps.angle_map.values, f32(records[-1].rotation_angles))
    assert note(maps.hidden_map, board) == NOT_RECORDED  # geometric, but logged before it was measured
    board.show_crosshair(board.batch_time_plot, 2, 0.0)
    assert note(maps.hidden_map, board) == GEOMETRIC_ONLY

    board.start_run(8, 4, NAMES)
    board.append([synthetic_record(s, mode="standard") for s in range(1, 6)])
    board.redraw()
    assert board.rotation.header.text == "Latest: step 5"
    assert [note(heatmap, board) for heatmap in maps.heatmaps] == [NO_ROTATION, NO_ROTATION, GEOMETRIC_ONLY]
    assert np.isnan(board.rotation.rotation_curve.yData).all()  # no rotation: a gap, not a similarity


def test_the_angle_colours_span_max_rotation_when_known_else_the_largest_angle(board):
    train(board)
    show_rotation(board)
    largest = board.series.rotation.largest_angle
    assert 0 < largest < 1 and board.rotation.maps.angle_map.heat.levels == pytest.approx((-largest, largest))
    board.start_run(8, 4, NAMES, max_rotation=2.0)
    train(board)
    board.redraw()
    assert board.rotation.maps.angle_map.heat.levels == (-2.0, 2.0)
    assert board.rotation.maps.rotation_map.heat.levels == (-1.0, 1.0)  # cos of differences up to 4 rad
    assert board.rotation.maps.hidden_map.heat.levels == (0.0, 1.0)


def test_the_plot_draws_the_mean_similarities_over_pairs(board):
    records = train(board)
    show_rotation(board)
    tab = board.rotation
    off = ~np.eye(P, dtype=bool)
    rotations = np.asarray(tab.rotation_curve.yData)
    assert rotations[4] == pytest.approx(rotation_similarity(f32(records[5].rotation_angles))[off].mean(), abs=1e-6)
    hidden = np.asarray(tab.hidden_curve.yData)
    assert hidden[13] == pytest.approx(records[14].hidden_similarity[off].mean(), abs=1e-6)
    assert np.isnan(hidden[:10]).all() and np.isnan(hidden[20:]).all()  # measured in geometric only
    assert tab.step_plot.getViewBox().linkedView(0) is board.batch_time_plot.getViewBox()


def test_while_comparing_the_maps_show_the_boards_own_run_and_say_so(board):
    board.run_label = "run-a"
    records = train(board)
    other = RunSeries(8, 4)
    other.append([synthetic_record(s, rng=np.random.default_rng(99 + s)) for s in range(1, 41)])
    board.set_overlays([Overlay("other", other), Overlay("run-a")])
    show_rotation(board)
    tab = board.rotation
    assert tab.header.text == "Latest: step 30 · run-a only"
    assert "run-a, the board's own" in tab.header.toolTip()
    board.show_crosshair(tab.step_plot, 9, 0.0)
    np.testing.assert_array_equal(tab.maps.angle_map.values, f32(records[9].rotation_angles))
    assert [len(curve.xData) for curve in tab.step_plot.comparison.curves] == [40, 30]
    board.hide_crosshair(tab)
    board.set_overlays([])
    board.redraw()
    assert tab.header.text == "Latest: step 30" and not tab.header.toolTip()
