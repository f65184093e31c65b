"""What the Rotation tab's maps read: a step's own angles and hidden-state similarity, exactly while every
step is a row, a bin's mean (and which steps) past the capacity, and never another step's values for a
step that had none."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from geogui.engine.log_lines import batch_line
from geogui.gui.plotdata.rotation_series import RotationSeries
from geogui.gui.plotdata.rotation_similarity import rotation_similarity
from geogui.gui.plotdata.run_series import RunSeries
from geogui.rundir.reader import parse_columns

from tests.gui.conftest import synthetic_record

P, R = 8, 4
LATER_FIELDS = ("util", "entropy", "overflow", "hsim")  # what older runs' batch lines do not have


def geometric(step: int):
    """A geometric batch with a similarity that tells steps apart: every entry step / 1000 (3 decimals, as
    a batch line keeps them)."""
    record = synthetic_record(step, mode="geometric")
    return dataclasses.replace(record, hidden_similarity=np.full((P, P), step / 1000))


def test_each_step_reads_its_own_record():
    series = RotationSeries(P, R)
    records = [synthetic_record(s) for s in range(1, 6)] + [geometric(s) for s in range(6, 9)]
    records += [synthetic_record(s, mode="standard") for s in range(9, 12)]
    series.append_records(records)
    for record in records:
        at = series.at(record.step)
        assert (at.first, at.last, at.binned) == (record.step, record.step, False)
        if record.rotation_angles is None:
            assert at.angles is None and at.rotation_similarity() is None
        else:
            np.testing.assert_array_equal(at.angles, record.rotation_angles.astype(np.float32))
        if record.hidden_similarity is None:
            assert at.hidden_similarity is None  # not the last geometric step's
        else:
            np.testing.assert_array_equal(at.hidden_similarity, record.hidden_similarity.astype(np.float32))
    assert series.at().first == 11  # no step: the latest
    assert series.at(4.4).first == 4 and series.at(1000).first == 11  # the nearest stored step
    largest = max(np.abs(r.rotation_angles).max() for r in records if r.rotation_angles is not None)
    assert series.largest_angle == np.float32(largest)


def test_past_the_capacity_a_step_reads_its_bin_and_says_which_steps():
    series = RotationSeries(P, R, capacity=8)
    records = [geometric(s) for s in range(1, 33)]
    series.append_records(records)
    assert len(series) <= 8
    at = series.at(10)
    assert at.binned and at.first <= 10 <= at.last
    members = [r for r in records if at.first <= r.step <= at.last]
    np.testing.assert_allclose(at.hidden_similarity, np.mean([r.hidden_similarity for r in members], axis=0),
                               rtol=1e-6)
    np.testing.assert_allclose(at.angles, np.mean([r.rotation_angles for r in members], axis=0), rtol=1e-5,
                               atol=1e-6)


def test_records_read_again_are_left_out_and_a_run_of_no_shape_holds_nothing():
    series = RotationSeries(P, R)
    series.append_records([geometric(s) for s in (1, 2, 3)])
    series.append_records([geometric(s) for s in (2, 3, 4, 4, 5)])  # an overlap, a repeated step
    first, _ = series.store.steps()
    assert first.tolist() == [1, 2, 3, 4, 5]
    empty = RotationSeries(0, 0)
    empty.append_records([geometric(1)])
    assert len(empty) == 0 and empty.at() is None and empty.nbytes() == 0


def test_columns_read_from_disk_give_what_the_records_gave_and_an_old_run_has_no_similarity():
    records = [synthetic_record(s) for s in range(1, 4)] + [geometric(s) for s in range(4, 7)]
    lines = [batch_line(r) for r in records]
    live = RunSeries(P, R)
    live.append(records)
    opened = RunSeries(P, R)
    opened.extend_columns(parse_columns(("\n".join(lines) + "\n").encode()))
    for step in range(1, 7):
        a, b = live.rotation.at(step), opened.rotation.at(step)
        np.testing.assert_array_equal(a.angles, b.angles)
        assert (a.hidden_similarity is None) == (b.hidden_similarity is None)
        if a.hidden_similarity is not None:
            np.testing.assert_array_equal(a.hidden_similarity, b.hidden_similarity)
    old = RunSeries(P, R)  # logged before the similarity was measured: no `hsim` in its lines
    old_lines = [json.dumps({k: v for k, v in json.loads(line).items() if k not in LATER_FIELDS}) for line in lines]
    columns = parse_columns(("\n".join(old_lines) + "\n").encode())
    old.extend_columns(columns)
    assert all(old.rotation.at(step).hidden_similarity is None for step in range(1, 7))
    np.testing.assert_array_equal(old.rotation.at(5).angles, live.rotation.at(5).angles)


def test_each_step_holds_its_means_over_pairs_and_a_bin_the_mean_of_its_steps_means():
    records = [synthetic_record(1), geometric(2), geometric(3), synthetic_record(4, mode="standard")]
    series = RotationSeries(P, R)
    series.append_records(records)
    steps, means = series.pair_means()
    assert steps.tolist() == [1, 2, 3, 4]
    off = ~np.eye(P, dtype=bool)
    rotations = [rotation_similarity(r.rotation_angles.astype(np.float32))[off].mean() for r in records[:3]]
    assert means[:3, 0] == pytest.approx(rotations, abs=1e-6) and np.isnan(means[3, 0])  # standard: no rotation
    assert np.isnan(means[0, 1]) and means[1:3, 1] == pytest.approx([0.002, 0.003], rel=1e-6)
    np.testing.assert_array_equal(series.pair_means_at(np.array([3, 1, 3])), means[[2, 0, 2]])

    binned = RotationSeries(P, R, capacity=2)
    binned.append_records(records)
    (centre, *_), binned_means = binned.pair_means()
    assert centre == 1.5 and binned_means[0, 0] == pytest.approx(np.mean(rotations[:2]), abs=1e-6)
    assert binned_means[0, 1] == pytest.approx(0.002, rel=1e-6)  # the one step of the bin that measured it
    np.testing.assert_array_equal(binned.pair_means_at(np.array([1, 2])), binned_means[[0, 0]])
