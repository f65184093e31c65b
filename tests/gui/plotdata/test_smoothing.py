from __future__ import annotations

import math

import numpy as np
import pytest

from geogui.gui.plotdata.smoothing import DEFAULT_WEIGHT, SegmentedEma, debiased_ema


def tensorboard_ema(values, weight):
    """TensorBoard's own loop (vz_line_chart2 resmoothDataset), transcribed: the reference."""
    last, count, out = 0.0, 0, []
    for value in values:
        if not math.isfinite(value):
            out.append(math.nan)
            continue
        last = last * weight + (1 - weight) * value
        count += 1
        out.append(last / (1 - weight ** count))
    return out


def test_hand_computed_values():
    # w = 0.5: last = 0.5, 1.25, 2.125; debiased by 1 - 0.5**k = 0.5, 0.75, 0.875.
    assert debiased_ema([1.0, 2.0, 3.0], 0.5) == pytest.approx([1.0, 5 / 3, 17 / 7], rel=1e-15)
    # w = 0.6: last = 0.4 * 2 = 0.8, then 0.48 + 0.4 * 4 = 2.08; debiased by 0.4 and 0.64.
    assert debiased_ema([2.0, 4.0], 0.6) == pytest.approx([2.0, 3.25], rel=1e-15)
    assert DEFAULT_WEIGHT == 0.6


def test_the_first_point_is_not_biased_towards_zero():
    assert debiased_ema([7.25, 7.25 + 1e-3], 0.999)[0] == 7.25


def test_a_constant_series_stays_exactly_constant():
    for weight in (0.6, 0.9, 0.999):
        for value in (0.1, 3.3, 1e-7, 12345.678):
            smoothed = debiased_ema(np.full(5000, value), weight)
            assert (smoothed == value).all(), (weight, value)


def test_weight_zero_is_off():
    values = np.array([3.0, 1.0, math.nan, 8.0])
    smoothed = debiased_ema(values, 0.0)
    assert smoothed[[0, 1, 3]].tolist() == [3.0, 1.0, 8.0] and math.isnan(smoothed[2])


def test_nonfinite_values_pass_through_and_are_not_averaged():
    # Hand-computed, w = 0.5: 1; NaN skipped; then last = 0.25 + 1.5 = 1.75 over 1 - 0.25 = 0.75.
    smoothed = debiased_ema([1.0, math.nan, 3.0, math.inf], 0.5)
    assert smoothed[0] == 1.0 and smoothed[2] == pytest.approx(7 / 3, rel=1e-15)
    assert math.isnan(smoothed[1]) and math.isnan(smoothed[3])


def test_each_mode_segment_is_smoothed_on_its_own():
    # A restart at index 2: the second segment starts at its own first value, untouched by the first.
    smoothed = debiased_ema([1.0, 2.0, 10.0, 20.0], 0.5, segment_starts=[2])
    assert smoothed == pytest.approx([1.0, 5 / 3, 10.0, 10 + 5 / 0.75], rel=1e-15)


def test_matches_tensorboard_on_long_noisy_series():
    rng = np.random.default_rng(0)
    values = 5 / np.sqrt(np.arange(1, 20001)) + rng.normal(0, 0.3, 20000)
    values[rng.integers(0, 20000, 50)] = math.nan
    for weight in (0.3, 0.6, 0.95, 0.999):
        assert debiased_ema(values, weight) == pytest.approx(tensorboard_ema(values, weight), rel=1e-9,
                                                              abs=1e-12, nan_ok=True)


def test_chunks_appended_one_by_one_equal_the_whole():
    rng = np.random.default_rng(1)
    values = rng.normal(2, 1, 3000)
    values[::97] = math.nan
    starts = [0, 700, 701, 2500]
    whole = debiased_ema(values, 0.9, starts[1:])
    ema, parts, done = SegmentedEma(0.9), [], 0
    for size in rng.integers(1, 40, 1000):
        chunk = values[done:done + size]
        if not len(chunk):
            break
        parts.append(ema.extend(chunk, [s - done for s in starts if done <= s < done + len(chunk)]))
        done += len(chunk)
    assert np.concatenate(parts) == pytest.approx(whole, rel=1e-12, nan_ok=True)


def test_weights_outside_the_slider_are_refused():
    for weight in (-0.1, 1.0, 2.0):
        with pytest.raises(ValueError, match="smoothing weight"):
            SegmentedEma(weight)
