"""Reduce a long series to what a plot can show without losing a single extreme. Numpy only.

pyqtgraph's own peak downsampling drops the last `len % factor` points (up to a bin's worth: the
newest data, where a fresh spike is) and turns a whole bin into a gap when one of its values is NaN.
Here the visible stretch is cut into one bin per pixel column, every bin (the last, partial one
included) contributes its minimum and maximum, and NaN only empties a bin that has nothing else. A
spike among a million points therefore reaches its full height at any zoom.
"""

from __future__ import annotations

import numpy as np


def visible_rows(x: np.ndarray, left: float, right: float) -> tuple[int, int]:
    """Rows [start, end) of sorted `x` inside [left, right], plus one either side, so that the
    line runs on to the edges of the view."""
    start = int(np.searchsorted(x, left, side="left")) - 1
    end = int(np.searchsorted(x, right, side="right")) + 1
    return max(start, 0), min(end, len(x))


def peak_reduce(x: np.ndarray, y: np.ndarray, left: float, right: float, bins: int
                ) -> tuple[np.ndarray, np.ndarray]:
    """The points to draw of (x, y) in [left, right] for `bins` pixel columns.

    Up to two points per bin are returned unchanged (views, no copy). Beyond that, each bin becomes
    its maximum and its minimum at the bin's middle x, in that order."""
    start, end = visible_rows(x, left, right)
    count = end - start
    bins = max(int(bins), 1)
    if count <= 2 * bins:
        return x[start:end], y[start:end]
    size = -(-count // bins)  # ceil: at most `bins` bins, the last one possibly partial
    offsets = np.arange(0, count, size)
    values = y[start:end]
    with np.errstate(invalid="ignore"):
        highs = np.fmax.reduceat(values, offsets)
        lows = np.fmin.reduceat(values, offsets)
    middles = x[start:end][np.minimum(offsets + size // 2, count - 1)]
    out_x = np.repeat(middles, 2)
    out_y = np.empty(2 * len(offsets))
    out_y[0::2] = highs
    out_y[1::2] = lows
    return out_x, out_y
