"""Plots a researcher can trust: spikes survive, log axes, outliers said out loud, numbers readable
and exportable. Everything is checked on what the plot items display, not only on the buffers."""

from __future__ import annotations

import csv
import dataclasses
import json
import math

import numpy as np
import pytest
from PySide6.QtCore import QPointF

from geogui.engine.metrics import EvalRecord, ModeChange
from geogui.gui.plots.board import PlotBoard
from geogui.gui.plots.overlays import Overlay
from geogui.gui.plotdata.run_series import RunSeries

from tests.gui.conftest import synthetic_record

NAMES = ("E0", "E1", "E2", "E3", "G0", "G1", "G2", "G3")
MILLION = 1_000_000


@pytest.fixture
def board(qtbot):
    board = PlotBoard()
    board.timer.stop()  # these tests drive redraw() themselves
    board.resize(1000, 700)
    qtbot.addWidget(board)
    board.show()
    qtbot.waitExposed(board)
    board.start_run(8, 4, NAMES)
    board.run_label = "run-a"
    return board


def million_batch_times(board: PlotBoard, spikes: dict[int, float], nan_rows: tuple[int, ...] = ()) -> np.ndarray:
    """A million batch times of about 10 ms with the given spikes, straight into the board's series."""
    series = board.series
    values = 10 + np.random.default_rng(0).random(MILLION)
    for row, height in spikes.items():
        values[row] = height
    values[list(nan_rows)] = np.nan
    series.step.extend(np.arange(1, MILLION + 1))
    series.wall_time_s.extend(np.arange(1, MILLION + 1) * 0.01)
    series.tokens_seen.extend(np.arange(1, MILLION + 1) * 128)
    series.batch_ms.extend(values)
    for column in (series.loss, series.loss_ema, series.lr_model, series.lr_rotation):
        column.extend(np.ones(MILLION))
    return values


def displayed(curve) -> tuple[np.ndarray, np.ndarray]:
    x, y = curve.getData()  # what pyqtgraph draws, after its own mapping and any reduction
    return np.asarray(x), np.asarray(y)


def test_one_spike_among_a_million_points_keeps_its_full_height_at_any_zoom(board, qtbot):
    plot, curve = board.batch_time_plot, board.training.batch_time_curve
    # At the very start, in the middle next to a NaN (one NaN empties a whole bin in pyqtgraph's own
    # peak mode), and in the last few points, which pyqtgraph's own peak mode drops.
    for row, nan_rows in ((0, ()), (500_123, (500_124,)), (MILLION - 3, ())):
        board.start_run(0, 0)
        million_batch_times(board, {row: 500.0}, nan_rows)
        board.redraw()
        x, y = displayed(curve)
        assert len(y) <= 2 * board.width() + 4  # reduced to the pixels: this is not the raw buffer
        assert np.nanmax(y) == 500.0 and np.nanmin(y) >= 10.0
        step = row + 1
        for left, right in ((step - 10, step + 10), (step - 2_000, step + 300_000), (step - 400_000, step + 5),
                            (1, MILLION)):
            plot.setXRange(left, right, padding=0)
            # The zoom itself asks for a redraw of the reduced data (no timer, no manual redraw here).
            qtbot.waitUntil(lambda: plot.drawn_key == plot.view_key(), timeout=5000)
            x, y = displayed(curve)
            assert np.nanmax(y) == 500.0, (row, left, right)
            first, last = max(left, 1), min(right, MILLION)
            pixel = (last - first) / plot.getViewBox().width() + 1  # steps per pixel column
            assert x.min() <= first + pixel and x.max() >= last - pixel  # the line reaches both edges
        plot.enableAutoRange(x=True)


def test_log_y_on_and_off_per_plot(board):
    board.append([synthetic_record(step) for step in range(1, 31)])
    board.redraw()
    loss = board.training.loss_plot
    assert loss.legend.getLabel(board.training.nonfinite_curve) is None  # no "not finite" entry without one
    loss.set_log_y(True)
    assert loss.log_y_action.isChecked() and loss.getAxis("left").logMode
    assert not board.batch_time_plot.getAxis("left").logMode  # per plot
    _x, y = displayed(board.training.loss_raw_curve)
    assert y == pytest.approx(np.log10(board.series.loss.view()))
    loss.log_y_action.setChecked(False)  # the right-click entry
    assert not loss.getAxis("left").logMode
    _x, y = displayed(board.training.loss_raw_curve)
    assert y == pytest.approx(board.series.loss.view())


def test_fit_without_outliers_says_how_many_points_are_outside_and_drops_none(board):
    records = [dataclasses.replace(synthetic_record(step), batch_time_s=0.010 + 1e-5 * (step % 7))
               for step in range(1, 201)]
    for step in (50, 120, 121):
        records[step - 1] = dataclasses.replace(records[step - 1], batch_time_s=2.0)  # 2000 ms stalls
    board.append(records)
    board.redraw()
    plot = board.batch_time_plot
    assert plot.outlier_text() == ""
    plot.getViewBox().menu.actions()  # the entry lives in the plot's right-click menu
    entry = next(a for a in plot.getViewBox().menu.actions() if a.text() == "Fit y without outliers")
    entry.setChecked(True)
    low, high = plot.getViewBox().viewRange()[1]
    assert high < 100 and low > 5
    assert plot.outside_view == 3
    assert plot.outlier_text() == "3 points outside view"
    plot.setXRange(100, 200, padding=0)  # the fit and the count follow the visible stretch
    board.redraw()
    assert plot.outlier_text() == "2 points outside view"
    plot.setXRange(30, 80, padding=0)
    board.redraw()
    assert plot.outlier_text() == "1 point outside view"
    plot.enableAutoRange(x=True)
    board.redraw()
    assert np.nanmax(displayed(board.training.batch_time_curve)[1]) == pytest.approx(2000.0)  # still drawn, off view
    assert len(board.shown_data(plot)[0].y) == 200
    entry.setChecked(False)
    plot.getViewBox().updateAutoRange()
    assert plot.outlier_text() == "" and plot.getViewBox().viewRange()[1][1] >= 2000


def test_crosshair_reads_step_raw_and_smoothed_value_mode_and_run(board, qtbot):
    board.append([synthetic_record(step) for step in range(1, 11)])
    board.add_mode_change(ModeChange(11, "standard", 0.001, "geometric_fast", 0.001))
    board.append([synthetic_record(step, mode="standard") for step in range(11, 21)])
    board.redraw()
    loss = board.series.loss.view()
    smoothed = board.series.loss_ema.view()
    text = board.show_crosshair(board.training.loss_plot, 12.2, loss[11])
    assert text == f"run-a · step 12 · loss {loss[11]:.6g} · smoothed {smoothed[11]:.6g} · mode standard"
    assert board.readout.text() == text
    training = board.training.shown_plots
    assert all(p.crosshair.isVisible() and p.crosshair.value() == 12.2
               for p in training)

    # The mouse itself: a move over the batch-time plot at step 4.
    view = board.batch_time_plot.getViewBox()
    qtbot.waitUntil(lambda: view.viewRange()[0][1] >= 20, timeout=5000)  # the view has fitted the data
    scene_pos = view.mapViewToScene(QPointF(4.0, float(board.series.batch_ms.view()[3])))
    board.training.widget.scene().sigMouseMoved.emit(scene_pos)
    qtbot.waitUntil(lambda: board.readout.text().startswith("run-a · step 4 · batch time"), timeout=5000)
    assert board.readout.text().endswith("mode geometric_fast")


def test_export_data_writes_every_visible_run_raw_and_smoothed(board, tmp_path):
    records = [synthetic_record(step) for step in range(1, 26)]
    records[6] = dataclasses.replace(records[6], loss=math.nan)
    board.append(records + [EvalRecord(25, 2.0, 7.4)])
    board.redraw()

    out = tmp_path / "loss.csv"
    assert board.export_data(out, board.training.loss_plot) == 25 + 1
    with open(out, newline="") as handle:
        rows = list(csv.DictReader(handle))
    loss_rows = [r for r in rows if r["series"] == "loss"]
    assert [int(r["step"]) for r in loss_rows] == list(range(1, 26))
    assert loss_rows[6]["value"] == "" and loss_rows[6]["smoothed"] == ""  # NaN: an empty cell, never 0
    assert float(loss_rows[7]["value"]) == records[7].loss
    assert float(loss_rows[24]["smoothed"]) == board.series.loss_ema.view()[24]
    assert {r["run"] for r in rows} == {"run-a"}
    assert [(r["series"], r["step"], r["value"]) for r in rows if r["series"] == "eval loss"] == [
        ("eval loss", "25", "2.0")]
    # The non-finite loss is drawn as a marker, and the smoothed loss skips it.
    assert displayed(board.training.nonfinite_curve)[0].tolist() == [7.0]
    assert board.training.loss_plot.legend.getLabel(board.training.nonfinite_curve).text == "not finite"
    nonfinite = board.training.nonfinite_curve
    assert displayed(nonfinite)[1].tolist() == [board.series.loss_ema.view()[5]]  # at the smoothed loss

    # Two runs compared: both, each raw and smoothed, in JSON.
    other = RunSeries(8, 4)
    other.append([synthetic_record(step, mode="standard") for step in range(1, 16)])
    board.set_overlays([Overlay("other", other), Overlay("run-a")])
    data = json.loads(_export(board, tmp_path / "loss.json"))
    assert [(s["run"], s["name"], len(s["value"])) for s in data["series"]] == [("other", "loss", 15),
                                                                                 ("run-a", "loss", 25)]
    assert data["series"][0]["smoothed"] == pytest.approx(other.loss_ema.view().tolist())
    assert data["series"][1]["value"][6] is None and data["x"] == "step"


def _export(board, out):
    board.export_data(out, board.training.loss_plot)
    return out.read_text()


def test_right_click_menu_exports_data_and_images(board, tmp_path, monkeypatch):
    board.append([synthetic_record(step) for step in range(1, 11)])
    board.redraw()
    menu = board.experts.expert_plot.getViewBox().menu
    actions = {action.text(): action for action in menu.actions()}
    assert {"Log y", "Fit y without outliers", "Export data…", "Export image…"} <= set(actions)
    from PySide6.QtWidgets import QFileDialog

    for name in ("experts.png", "experts.svg", "experts.csv"):
        monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, name=name: (str(tmp_path / name), ""))
        actions["Export data…" if name.endswith(".csv") else "Export image…"].trigger()
        assert (tmp_path / name).stat().st_size > 0
    assert (tmp_path / "experts.png").read_bytes()[:4] == b"\x89PNG"
    assert b"<svg" in (tmp_path / "experts.svg").read_bytes()
    with open(tmp_path / "experts.csv", newline="") as handle:
        series = {row["series"] for row in csv.DictReader(handle)}
    assert series == {f"{name} load" for name in NAMES}


def test_x_axis_selector_steps_wall_time_and_tokens(board):
    board.append([synthetic_record(step) for step in range(1, 11)])
    board.add_mode_change(ModeChange(11, "standard", 0.001, "geometric_fast", 0.001))
    board.append([synthetic_record(step, mode="standard") for step in range(11, 21)])
    board.append([EvalRecord(20, 2.0, 7.4)])
    board.x_axis.setCurrentIndex(board.x_axis.findData("tokens"))
    assert board.training.batch_time_curve.xData.tolist() == [128.0 * s for s in range(1, 21)]
    assert board.training.eval_curve.xData.tolist() == [128.0 * 20]
    assert board.training.angle_plot.getAxis("bottom").labelText == "tokens seen"
    marks = board.batch_time_plot.mode_marks
    assert marks.marks[0].x == pytest.approx(128 * 10.5)  # halfway between the last batch before and the first after
    board.x_axis.setCurrentIndex(board.x_axis.findData("wall_time"))
    assert board.training.batch_time_curve.xData == pytest.approx([0.01 * s for s in range(1, 21)])
    text = board.show_crosshair(board.batch_time_plot, 0.05, 10.0)
    assert "step 5 · wall time (s) 0.05 · batch time" in text
    board.x_axis.setCurrentIndex(board.x_axis.findData("step"))
    assert marks.marks[0].x == 10.5


def test_a_tab_shown_after_a_zoom_draws_the_zoomed_stretch_in_full_detail(board, qtbot):
    board.start_run(0, 0)
    million_batch_times(board, {})
    learning_rates = board.plot_tabs.index(board.learning_rates)
    board.tabs.setCurrentIndex(learning_rates)  # drawn whole, then hidden
    board.tabs.setCurrentIndex(0)
    lr_plot = board.learning_rates.lr_plot
    assert lr_plot.drawn_key[0] == "auto" and not board.learning_rates.stale
    board.batch_time_plot.setXRange(1_000, 2_000, padding=0)
    qtbot.waitUntil(lambda: not board.training.stale, timeout=5000)
    board.tabs.setCurrentIndex(learning_rates)  # not drawn since the zoom
    qtbot.waitUntil(lambda: lr_plot.drawn_key == lr_plot.view_key(), timeout=5000)
    x, _y = displayed(board.learning_rates.lr_model_curve)
    assert x.min() >= 998 and x.max() <= 2_002 and len(x) >= 1_000  # every point of the stretch, none beyond


def test_the_crosshair_and_readout_go_when_the_mouse_leaves_the_plots(board, qtbot):
    from PySide6.QtCore import QEvent
    from PySide6.QtWidgets import QApplication

    board.append([synthetic_record(step) for step in range(1, 21)])
    board.redraw()
    plots = board.training.shown_plots
    assert board.show_crosshair(board.batch_time_plot, 5.0, 10.0)
    assert all(plot.crosshair.isVisible() for plot in plots) and board.readout.text().strip()
    QApplication.sendEvent(board.training.widget.viewport(), QEvent(QEvent.Type.Leave))  # off the widget
    assert not any(plot.crosshair.isVisible() for plot in plots) and not board.readout.text().strip()

    board.show_crosshair(board.batch_time_plot, 5.0, 10.0)
    outside = board.batch_time_plot.getViewBox().sceneBoundingRect().topLeft() - QPointF(30, 30)  # on the axis
    board.training.widget.scene().sigMouseMoved.emit(outside)
    qtbot.waitUntil(lambda: not board.batch_time_plot.crosshair.isVisible(), timeout=2000)
    assert not board.readout.text().strip()
