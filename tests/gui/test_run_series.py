from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from geogui.engine.metrics import EvalRecord, ModeChange
from geogui.gui.growable import GrowableArray
from geogui.gui.run_series import RunSeries

from .conftest import synthetic_record


def test_growable_array_doubles_and_keeps_its_rows():
    array = GrowableArray(capacity=2)
    for value in range(5):
        array.append(value)
    assert array.capacity == 8
    array.extend([5, 6, 7, 8])
    assert array.capacity == 16
    assert array.view().tolist() == list(range(9))


def test_growable_rows_and_views_survive_growth():
    array = GrowableArray(width=3, capacity=1)
    array.append(np.array([1.0, 2.0, 3.0]))
    before = array.view()
    array.extend(np.ones((10, 3)))
    assert before.tolist() == [[1.0, 2.0, 3.0]]  # an old view still reads the old rows
    assert array.view().shape == (11, 3)


def reference_ema(values, smoothing):
    ema, out = None, []
    for value in values:
        ema = value if ema is None else smoothing * ema + (1 - smoothing) * value
        out.append(ema)
    return out


def test_series_columns_and_ema_follow_the_records():
    series = RunSeries(presentations=8, rotation_dimensions=4, smoothing=0.8)
    records = [synthetic_record(step) for step in range(1, 51)]
    series.append(records[:20] + [EvalRecord(20, 2.5, math.exp(2.5))])
    series.append(records[20:])
    assert series.step.view().tolist() == list(range(1, 51))
    assert series.batch_ms.view() == pytest.approx([r.batch_time_s * 1000 for r in records])
    assert series.loss_ema.view() == pytest.approx(reference_ema([r.loss for r in records], 0.8))
    assert series.eval_step.view().tolist() == [20] and series.eval_loss.view().tolist() == [2.5]
    assert series.angles.view()[7].reshape(8, 4) == pytest.approx(records[7].rotation_angles)
    assert series.expert_load.view().shape == (50, 8)
    assert series.angle_norms()[3] == pytest.approx(np.linalg.norm(records[3].rotation_angles, axis=1))

    series.set_smoothing(0.5)
    assert series.loss_ema.view() == pytest.approx(reference_ema([r.loss for r in records], 0.5))


def test_standard_mode_leaves_a_gap_in_the_angles_and_starts_a_segment():
    series = RunSeries(presentations=8, rotation_dimensions=4)
    series.append([synthetic_record(1), synthetic_record(2)])
    series.add_mode_change(ModeChange(3, "standard", 0.001, "geometric_fast", 0.001))
    series.append([synthetic_record(3, mode="standard")])
    series.add_mode_change(ModeChange(4, "standard", 0.01, "standard", 0.001))  # weight only: same segment
    assert np.isnan(series.angles.view()[2]).all()
    assert [(s.start_step, s.mode) for s in series.segments] == [(1, "geometric_fast"), (3, "standard")]
    assert len(series.mode_changes) == 2


def test_a_nonfinite_loss_does_not_poison_the_ema():
    series = RunSeries(presentations=8, rotation_dimensions=4, smoothing=0.5)
    records = [synthetic_record(1), synthetic_record(2), synthetic_record(3)]
    records[1] = dataclasses.replace(records[1], loss=math.nan)
    series.append(records)
    ema = series.loss_ema.view()
    assert math.isfinite(ema[2]) and ema[1] == ema[0]
