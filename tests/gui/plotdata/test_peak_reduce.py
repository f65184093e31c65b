"""The per-pixel min/max reduction the plots draw through (numpy only)."""

from __future__ import annotations

import numpy as np

from geogui.gui.plotdata.peak_reduce import peak_reduce, visible_rows


def test_short_stretches_pass_through_untouched():
    x, y = np.arange(10.0), np.arange(10.0) ** 2
    out_x, out_y = peak_reduce(x, y, 2.5, 6.5, bins=100)
    assert out_x.tolist() == [2, 3, 4, 5, 6, 7] and out_y.tolist() == [4, 9, 16, 25, 36, 49]  # one beyond each edge
    assert np.shares_memory(out_y, y)  # a view, not a copy


def test_every_bin_keeps_its_max_and_min_including_the_last_partial_one():
    # 10 points in 3 bins of 4: [0..3], [4..7], [8, 9]; the last bin's spike must survive.
    y = np.array([1.0, 5, 2, 3, 0, 4, 4, 4, 7, 99])
    out_x, out_y = peak_reduce(np.arange(10.0), y, 0, 9, bins=3)
    assert out_y.tolist() == [5, 1, 4, 0, 99, 7]
    assert out_x.tolist() == [2, 2, 6, 6, 9, 9]


def test_nan_only_empties_a_bin_that_has_nothing_else():
    y = np.array([1.0, np.nan, 8, 2, np.nan, np.nan, np.nan, np.nan, 3, 4, 5, 6])
    _x, out_y = peak_reduce(np.arange(12.0), y, 0, 11, bins=3)
    assert out_y[:2].tolist() == [8, 1] and np.isnan(out_y[2:4]).all() and out_y[4:].tolist() == [6, 3]


def test_visible_rows_clamp_at_the_ends():
    x = np.arange(1.0, 101.0)
    assert visible_rows(x, -50, 500) == (0, 100)
    assert visible_rows(x, 10, 20) == (8, 21)
