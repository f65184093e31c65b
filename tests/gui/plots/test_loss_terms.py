"""The Loss terms tab: each term of the loss as its own curve (raw under smoothed, as the loss), a gap
where the mode does not compute a term, the penalty weight as steps under them, compared runs' task
losses, and readout and export as on every other plot."""

from __future__ import annotations

import csv
import dataclasses
import json

import numpy as np
import pytest
from PySide6.QtWidgets import QLabel

from geogui.engine.log_lines import batch_line
from geogui.engine.metrics import ModeChange
from geogui.gui.plotdata.loss_terms import LOSS_TERMS, TERM_FIELDS
from geogui.gui.plotdata.run_series import RunSeries
from geogui.gui.plotdata.smoothing import debiased_ema
from geogui.gui.plots.loss_terms import GAP_NOTE
from geogui.gui.plots.overlays import Overlay
from geogui.rundir.reader import parse_columns

from tests.gui.conftest import synthetic_record

NAMES = [term.name for term in LOSS_TERMS]


def with_terms(step: int, mode: str = "geometric_fast", weight: float = 0.001):
    """A record whose terms are distinct and tell apart step and term (term i: (i + 1) + step / 64,
    exact in float32, so that they survive a metrics.jsonl line unchanged)."""
    terms = {name: (index + 1) + step / 64 for index, name in enumerate(TERM_FIELDS)}
    return dataclasses.replace(synthetic_record(step, mode=mode), penalty_weight=weight, **terms)


def train(board, *stretches: tuple[str, float], steps: int = 10) -> list:
    """Batches in each (mode, penalty weight) in turn, a ModeChange between them; returns the records."""
    records, step, previous = [], 1, None
    for mode, weight in stretches:
        if previous is not None:
            board.add_mode_change(ModeChange(step, mode, weight, *previous))
        batch = [with_terms(s, mode, weight) for s in range(step, step + steps)]
        board.append(batch)
        records += batch
        step, previous = step + steps, (mode, weight)
    return records


def show_terms(board) -> None:
    board.tabs.setCurrentIndex(board.plot_tabs.index(board.loss_terms))
    board.redraw()


def values(curve) -> np.ndarray:
    return np.asarray(curve.yData, dtype=np.float64)


def test_the_tab_follows_training_and_each_term_curve_holds_the_record_values(board):
    assert [board.tabs.tabText(i) for i in range(2)] == ["Training", "Loss terms"]
    records = train(board, ("geometric", 0.001), steps=12)
    board.smoothing.setValue(0.0)
    show_terms(board)
    tab = board.loss_terms
    assert tab.terms_plot.legend.labels() == NAMES
    for index, name in enumerate(TERM_FIELDS):
        want = [getattr(r, name) for r in records]
        if name == "aux_loss":  # not computed in geometric
            assert np.isnan(values(tab.raw_curves[index])).all()
            continue
        assert values(tab.raw_curves[index]).tolist() == want  # exactly, not approximately
        assert values(tab.smoothed_curves[index]).tolist() == want  # smoothing off: the raw values
        assert tab.raw_curves[index].xData.tolist() == list(range(1, 13))


def test_the_terms_are_smoothed_as_the_loss_restarting_at_each_mode_change(board):
    assert board.smoothing.value() == 0.6
    records = train(board, ("geometric_fast", 0.001), ("standard", 0.001))  # smoothed as they arrive
    show_terms(board)
    task = board.loss_terms.smoothed_curves[0]
    first, second = records[:10], records[10:]
    want = np.concatenate([debiased_ema([r.task_loss for r in first], 0.6),
                           debiased_ema([r.task_loss for r in second], 0.6)])
    assert values(task) == pytest.approx(want)
    assert values(task)[10] == second[0].task_loss  # the new segment starts from its own first value
    assert values(task)[9] != first[9].task_loss  # smoothed within the segment
    board.smoothing.setValue(0.0)  # the board's one slider smooths the terms too
    assert board.loss_terms.stale
    board.redraw()
    assert values(task).tolist() == [r.task_loss for r in records]


def test_a_term_the_mode_does_not_compute_is_a_gap_and_the_tab_says_so(board):
    train(board, ("geometric_fast", 0.001), ("geometric", 0.001), ("standard", 0.001))
    show_terms(board)
    tab = board.loss_terms
    gaps = {name: np.isnan(values(curve)).reshape(3, 10).all(axis=1).tolist()
            for name, curve in zip(TERM_FIELDS, tab.raw_curves)}
    assert gaps == {  # per stretch: fast, geometric, standard
        "task_loss": [False, False, False],
        "aux_loss": [False, True, False],
        "penalty": [False, False, True],
        "orthogonality": [True, False, True],
        "specialization": [True, False, True],
    }
    assert not np.isnan(values(tab.raw_curves[3])[10:20]).any()  # computed where the mode computes it
    assert all(curve.opts["connect"] == "finite" for curve in tab.raw_curves + tab.smoothed_curves)
    assert GAP_NOTE in [label.text() for label in tab.page.findChildren(QLabel)]
    tips = {label.text: label.toolTip() for _, label in tab.terms_plot.legend.items}
    assert "Standard, Geometric fast: not computed (a gap, not a zero)" in tips["orthogonality"]
    assert "Geometric: not computed" in tips["load balance"]
    assert "mean prediction of 8 presentations" in tips["task"]
    assert "not computed" not in tips["task"]
    assert "Geometric: loss = cross-entropy of the mean prediction" in tab.terms_plot.titleLabel.toolTip()


def test_the_penalty_weight_steps_where_a_mode_change_set_a_new_one(board):
    train(board, ("geometric_fast", 0.001), ("geometric_fast", 0.01), ("geometric", 0.05))
    show_terms(board)
    curve = board.loss_terms.weight_curve
    weights = values(curve)
    assert weights.tolist() == [0.001] * 10 + [0.01] * 10 + [0.05] * 10
    assert np.flatnonzero(np.diff(weights)).tolist() == [9, 19]  # between steps 10|11 and 20|21
    assert curve.opts["stepMode"] == "right"  # held from its batch to the next: steps, not slopes
    marks = board.loss_terms.weight_plot.mode_marks.marks
    assert [(mark.x, mark.label) for mark in marks] == [(10.5, "Geometric fast  w=0.01"), (20.5, "Geometric  w=0.05")]
    weight_plot, terms_plot = board.loss_terms.weight_plot, board.loss_terms.terms_plot
    assert weight_plot.geometry().height() < terms_plot.geometry().height() / 2  # a small plot under the terms
    assert weight_plot.getViewBox().linkedView(0) is board.batch_time_plot.getViewBox()


def metrics_text(records) -> bytes:
    lines = [json.dumps(r.to_json()) if isinstance(r, ModeChange) else batch_line(r) for r in records]
    return ("\n".join(lines) + "\n").encode()


def drawn(board) -> list[np.ndarray]:
    tab = board.loss_terms
    return [np.column_stack([curve.xData, curve.yData]) for curve in
            (*tab.raw_curves, *tab.smoothed_curves, tab.weight_curve)]


def test_a_run_opened_from_its_columns_shows_what_the_same_run_showed_live(board):
    records = [with_terms(step) for step in range(1, 9)]
    records.append(ModeChange(9, "geometric", 0.03, "geometric_fast", 0.001))
    records += [with_terms(step, "geometric", weight=0.03) for step in range(9, 15)]
    columns = parse_columns(metrics_text(records))
    board.append(records[:8])
    board.add_mode_change(records[8])
    board.append(records[9:])
    show_terms(board)
    live = drawn(board)
    board.start_run(8, 4)
    board.load_columns(columns)
    board.redraw()
    opened = drawn(board)
    assert len(opened[0]) == 14
    for live_curve, opened_curve in zip(live, opened):
        np.testing.assert_array_equal(opened_curve, live_curve)


def test_compared_runs_overlay_their_task_loss_and_penalty_weight(board):
    train(board, ("geometric_fast", 0.001))
    other = RunSeries(8, 4)
    other.append([dataclasses.replace(with_terms(step, "geometric"), task_loss=9.0 + step, penalty_weight=0.5)
                  for step in range(1, 7)])
    board.set_overlays([Overlay("other", other), Overlay("this")])
    show_terms(board)
    tab = board.loss_terms
    comparison = tab.terms_plot.comparison
    assert len(comparison.curves) == len(comparison.raw_curves) == 2
    assert values(comparison.raw_curves[0]).tolist() == [9.0 + step for step in range(1, 7)]
    assert values(comparison.raw_curves[1]).tolist() == [with_terms(s).task_loss for s in range(1, 11)]
    assert values(comparison.curves[0])[0] == 10.0  # smoothed over raw: the debiased EMA starts at the first
    assert [label.text for _, label in comparison.legend.items] == ["other", "this"]
    assert "Task loss" in tab.terms_plot.titleLabel.text
    assert values(tab.weight_plot.comparison.curves[0]).tolist() == [0.5] * 6
    own = tab.raw_curves + tab.smoothed_curves + [tab.weight_curve]
    assert not any(curve.isVisible() for curve in own)
    readout = board.show_crosshair(tab.terms_plot, 3.0, np.log10(12.0))
    assert readout.startswith("other · step 3 · task 12")
    tab.total_box.setChecked(True)  # not over the compared runs
    assert not tab.total_curve.isVisible()
    board.set_overlays([])
    assert all(curve.isVisible() for curve in own) and tab.terms_plot.titleLabel.text == "Loss terms"
    tab.total_box.setChecked(False)
    board.redraw()
    assert not tab.total_curve.isVisible() and not tab.total_raw_curve.isVisible()


def test_the_total_loss_is_drawn_over_its_terms_when_asked(board):
    records = train(board, ("geometric_fast", 0.001))
    show_terms(board)
    tab = board.loss_terms
    assert not tab.total_box.isChecked() and not tab.total_curve.isVisible()
    tab.total_box.setChecked(True)
    assert tab.stale
    board.redraw()
    assert tab.total_curve.isVisible() and tab.terms_plot.legend.labels() == [*NAMES, "total"]
    assert values(tab.total_raw_curve).tolist() == [r.loss for r in records]
    assert "sum of the terms" in tab.terms_plot.legend.getLabel(tab.total_curve).toolTip()
    tab.total_curve.setVisible(False)  # what a click on its legend entry does
    board.redraw()
    assert not tab.total_curve.isVisible() and not tab.total_raw_curve.isVisible()  # the click holds
    tab.total_box.setChecked(False)
    board.redraw()
    assert not tab.total_curve.isVisible() and tab.terms_plot.legend.labels() == NAMES
    assert "loss" not in [shown.name for shown in tab.terms_plot.visible_shown()]


def test_log_y_is_on_at_first_and_the_box_and_the_menu_agree(board):
    tab = board.loss_terms
    assert tab.terms_plot.log_y and tab.log_box.isChecked()
    tab.terms_plot.log_y_action.setChecked(False)  # from the plot's right-click menu
    assert not tab.log_box.isChecked() and not tab.terms_plot.log_y
    tab.log_box.setChecked(True)
    assert tab.terms_plot.log_y and tab.terms_plot.getViewBox().state["logMode"][1]
    assert not tab.weight_plot.log_y


def test_hiding_a_term_from_the_legend_hides_its_raw_curve_and_its_readout(board):
    train(board, ("geometric", 0.001))
    show_terms(board)
    tab = board.loss_terms
    orthogonality = NAMES.index("orthogonality")
    tab.smoothed_curves[orthogonality].setVisible(False)  # what a click on its legend entry does
    assert not tab.raw_curves[orthogonality].isVisible()
    assert "orthogonality" not in [shown.name for shown in tab.terms_plot.visible_shown()]
    assert tab.raw_curves[0].isVisible()


def test_readout_and_exports_work_as_on_every_plot(board, tmp_path):
    records = train(board, ("geometric_fast", 0.001), ("geometric", 0.02))
    show_terms(board)
    tab = board.loss_terms
    penalty = records[14].penalty
    text = board.show_crosshair(tab.terms_plot, 15.0, np.log10(penalty))
    assert text.startswith(f"step 15 · rotation penalty {penalty:.6g} · smoothed ")
    assert text.endswith("mode geometric")
    assert "penalty weight 0.02" in board.show_crosshair(tab.weight_plot, 15.0, 0.02)
    out = tmp_path / "terms.csv"
    assert board.export_data(out, tab.terms_plot) == 5 * 20
    with open(out, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(dict.fromkeys(row["series"] for row in rows)) == NAMES
    orthogonality = [row for row in rows if row["series"] == "orthogonality"]
    assert [row["value"] for row in orthogonality[:10]] == [""] * 10  # not computed: no value, not 0
    assert float(orthogonality[10]["value"]) == records[10].orthogonality
    assert dict(board.plot_items())["Loss terms"] is tab.terms_plot
    weight_csv = tmp_path / "weight.csv"
    assert board.export_data(weight_csv, dict(board.plot_items())["Loss terms: Rotation penalty weight"]) == 20
    image = tmp_path / "terms.png"
    assert board.export_image(image, tab.terms_plot) == [image] and image.stat().st_size > 0


def test_terms_and_weights_logged_as_not_finite_are_gaps_in_an_opened_run(board):
    records = [with_terms(step) for step in range(1, 7)]
    records[2] = dataclasses.replace(records[2], task_loss=float("nan"), penalty_weight=float("nan"))
    board.load_columns(parse_columns(metrics_text(records)))  # written as null, read back as NaN
    show_terms(board)
    tab = board.loss_terms
    task, weight = values(tab.raw_curves[0]), values(tab.weight_curve)
    assert np.isnan(task[2]) and np.isnan(weight[2])
    assert task[[0, 1, 3]].tolist() == [records[i].task_loss for i in (0, 1, 3)]
    assert weight[[0, 1, 3, 4, 5]].tolist() == [0.001] * 5
    assert not np.isnan(values(tab.smoothed_curves[0])[3])  # the smoothing carries on past the gap


def test_a_long_run_is_drawn_reduced_and_keeps_the_weight_step(board):
    steps = 6_000  # several batches per pixel column of the 1000-pixel board
    series = board.series
    board.append([with_terms(step) for step in range(1, 3_001)])
    board.add_mode_change(ModeChange(3_001, "geometric_fast", 0.5, "geometric_fast", 0.001))
    board.append([with_terms(step, weight=0.5) for step in range(3_001, steps + 1)])
    show_terms(board)
    curve = board.loss_terms.weight_curve
    assert len(series) == steps and len(curve.yData) < steps / 2  # reduced to the view's pixels
    assert set(values(curve).tolist()) == {0.001, 0.5}
