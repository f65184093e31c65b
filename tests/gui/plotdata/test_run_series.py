from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from geogui.engine.metrics import EvalRecord, ModeChange
from geogui.gui.plotdata.growable import GrowableArray
from geogui.gui.plotdata.run_series import RunSeries

from tests.gui.conftest import synthetic_record


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
    """TensorBoard's debiased EMA, written out as a loop."""
    last, count, out = 0.0, 0, []
    for value in values:
        last = smoothing * last + (1 - smoothing) * value
        count += 1
        out.append(last / (1 - smoothing ** count))
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
    assert math.isnan(ema[1]) and ema[2] == pytest.approx(reference_ema([records[0].loss, records[2].loss], 0.5)[1])
    assert series.nonfinite_step.view().tolist() == [2]


def test_the_smoothed_loss_restarts_at_a_mode_switch_live_and_recomputed():
    series = RunSeries(presentations=8, rotation_dimensions=4, smoothing=0.9)
    first = [synthetic_record(step) for step in range(1, 11)]
    second = [synthetic_record(step, mode="standard") for step in range(11, 21)]
    series.append(first[:7])
    series.append(first[7:])
    series.add_mode_change(ModeChange(11, "standard", 0.001, "geometric_fast", 0.001))
    series.append(second)
    expected = reference_ema([r.loss for r in first], 0.9) + reference_ema([r.loss for r in second], 0.9)
    assert series.loss_ema.view()[10] == second[0].loss  # the new segment starts at its own first loss
    assert series.loss_ema.view() == pytest.approx(expected)
    series.set_smoothing(0.5)
    series.set_smoothing(0.9)
    assert series.loss_ema.view() == pytest.approx(expected)
    assert series.mode_at(9) == "geometric_fast" and series.mode_at(10) == "standard"


def test_wall_time_carries_on_across_a_resume():
    series = RunSeries(presentations=8, rotation_dimensions=4)
    series.append([dataclasses.replace(synthetic_record(s), wall_time_s=float(s)) for s in (1, 2, 3)])
    series.append([dataclasses.replace(synthetic_record(s), wall_time_s=float(s - 3)) for s in (4, 5)])
    assert series.x_column("wall_time").view().tolist() == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert series.x_column("tokens").view().tolist() == [128.0 * s for s in range(1, 6)]
    assert series.x_at_steps("wall_time", [2.5]).tolist() == [2.5]
