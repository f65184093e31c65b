"""The loss terms' columns: exactly the logged values, NaN where the mode does not compute a term,
smoothed as the loss is (restarting at every mode segment), the same whether appended or read."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from geogui.engine.log_lines import batch_line
from geogui.engine.metrics import ModeChange
from geogui.gui.plotdata.loss_terms import LOSS_TERMS, TERM_FIELDS, computed_only
from geogui.gui.plotdata.run_series import RunSeries
from geogui.gui.plotdata.smoothing import ColumnsEma, debiased_ema, debiased_ema_columns
from geogui.rundir.reader import parse_columns

from tests.gui.conftest import synthetic_record


def with_terms(step: int, mode: str = "geometric_fast", weight: float = 0.001):
    """A record whose five terms are distinct and tell apart step and term (term i: (i + 1) + step / 64,
    all exact in float32, so they survive a metrics.jsonl line)."""
    terms = {name: (index + 1) + step / 64 for index, name in enumerate(TERM_FIELDS)}
    return dataclasses.replace(synthetic_record(step, mode=mode), penalty_weight=weight, **terms)


def expected_terms(records) -> np.ndarray:
    return np.array([[getattr(r, name) for name in TERM_FIELDS] for r in records])


def test_each_mode_keeps_the_terms_it_computes_and_leaves_gaps_for_the_others():
    modes = ["standard", "geometric_fast", "geometric", "some_future_mode"]
    terms = np.arange(20, dtype=np.float64).reshape(4, 5) + 1.0
    terms[1, 2] = 0.0  # a penalty the mode computes, at weight 0: a value, not a gap
    shown = computed_only(terms, modes)
    assert [term.name for term in LOSS_TERMS] == [
        "task", "load balance", "rotation penalty", "orthogonality", "specialization"]
    computed = ~np.isnan(shown)
    assert computed.tolist() == [
        [True, True, False, False, False],  # standard: task and load balance
        [True, True, True, False, False],  # geometric fast: and the rotation penalty
        [True, False, True, True, True],  # geometric: no load balance (routing is forced)
        [True, True, True, True, True],  # a mode not known here: nothing is assumed away
    ]
    assert shown[computed].tolist() == terms[computed].tolist()
    assert shown[1, 2] == 0.0
    assert np.isnan(computed_only(np.zeros((1, 5)), ["standard"])[0, 3])
    assert computed_only(np.zeros((0, 5)), []).shape == (0, 5)


def test_the_series_holds_each_term_as_logged_and_the_penalty_weight():
    series = RunSeries(presentations=8, rotation_dimensions=4, smoothing=0.0)
    fast = [with_terms(step) for step in range(1, 6)]
    geometric = [with_terms(step, "geometric", weight=0.02) for step in range(6, 9)]
    series.append(fast)
    series.add_mode_change(ModeChange(6, "geometric", 0.02, "geometric_fast", 0.001))
    series.append(geometric)
    terms = series.loss_terms.view()
    assert terms.shape == (8, 5)
    want = computed_only(expected_terms(fast + geometric), [r.mode for r in fast + geometric])
    np.testing.assert_array_equal(terms, want)
    assert terms[0].tolist()[:3] == [1 + 1 / 64, 2 + 1 / 64, 3 + 1 / 64]  # exactly the record's values
    assert np.isnan(terms[:5, 3:]).all() and np.isnan(terms[5:, 1]).all()
    np.testing.assert_array_equal(series.loss_terms_ema.view(), terms)  # smoothing 0 is off
    assert series.penalty_weight.view().tolist() == [0.001] * 5 + [0.02] * 3


def test_the_terms_smoothing_restarts_at_a_mode_change_live_and_recomputed():
    series = RunSeries(presentations=8, rotation_dimensions=4, smoothing=0.9)
    first = [with_terms(step) for step in range(1, 11)]
    second = [with_terms(step, "standard") for step in range(11, 21)]
    series.append(first[:4])
    series.append(first[4:])
    series.add_mode_change(ModeChange(11, "standard", 0.001, "geometric_fast", 0.001))
    series.append(second)
    ema = series.loss_terms_ema.view()
    for index, name in enumerate(("task_loss", "aux_loss")):  # computed in both modes
        want = np.concatenate([debiased_ema([getattr(r, name) for r in first], 0.9),
                               debiased_ema([getattr(r, name) for r in second], 0.9)])
        assert ema[:, index] == pytest.approx(want)
        assert ema[10, index] == getattr(second[0], name)  # the new segment starts at its own first value
    assert ema[:10, 2] == pytest.approx(debiased_ema([r.penalty for r in first], 0.9))
    assert np.isnan(ema[10:, 2]).all()  # standard: no penalty, and none carried over into it
    live = ema.copy()
    series.set_smoothing(0.3)
    assert not np.allclose(series.loss_terms_ema.view()[:, 0], live[:, 0])
    series.set_smoothing(0.9)
    np.testing.assert_allclose(series.loss_terms_ema.view(), live, rtol=1e-6)


def test_columns_ema_is_the_loss_ema_of_each_column_however_it_is_chunked():
    rng = np.random.default_rng(3)
    values = rng.random((40, 3))
    values[7, 1] = np.nan
    whole = debiased_ema_columns(values, 0.7, [15])
    for column in range(3):
        np.testing.assert_array_equal(whole[:, column], debiased_ema(values[:, column], 0.7, [15]))
    ema = ColumnsEma(3, 0.7)
    chunked = np.concatenate([ema.extend(values[:10], [0]), ema.extend(values[10:], [5])])
    np.testing.assert_allclose(chunked, whole, rtol=1e-12)


def metrics_text(records) -> bytes:
    lines = []
    for record in records:
        lines.append(json.dumps(record.to_json()) if isinstance(record, ModeChange) else batch_line(record))
    return ("\n".join(lines) + "\n").encode()


def test_a_run_read_as_columns_holds_the_same_terms_as_one_appended_live():
    records = [with_terms(step) for step in range(1, 8)]
    records.append(ModeChange(8, "geometric", 0.05, "geometric_fast", 0.001))
    records += [with_terms(step, "geometric", weight=0.05) for step in range(8, 14)]
    records.append(ModeChange(14, "geometric", 0.2, "geometric", 0.05))  # the weight alone
    records += [with_terms(step, "geometric", weight=0.2) for step in range(14, 18)]
    columns = parse_columns(metrics_text(records))
    read = RunSeries(8, 4, smoothing=0.6)
    read.extend_columns(columns)
    live = RunSeries(8, 4, smoothing=0.6)
    live.extend_records(columns.records(8))
    for name in ("loss_terms", "loss_terms_ema", "penalty_weight"):
        np.testing.assert_array_equal(getattr(read, name).view(), getattr(live, name).view(), err_msg=name)
    batches = [r for r in records if not isinstance(r, ModeChange)]
    np.testing.assert_array_equal(read.loss_terms.view(),
                                  computed_only(expected_terms(batches), [r.mode for r in batches]))
    assert read.penalty_weight.view().tolist() == [0.001] * 7 + [0.05] * 6 + [0.2] * 4
