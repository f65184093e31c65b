"""TensorBoard's debiased exponential moving average, vectorised, per mode segment. Numpy only.

For the finite values y_1..y_n of a segment and a weight w in [0, 1):

    last_k  = w * last_{k-1} + (1 - w) * y_k        (last_0 = 0)
    shown_k = last_k / (1 - w**k)

which is what TensorBoard draws (its fix for curves biased towards zero at the start, #786). Three
deliberate details:

- A non-finite value is not folded into the average: its smoothed value is NaN (the plot marks it)
  and the next finite value continues from the average before it, with k counting finite values.
- Every segment starts afresh (a mode switch is not smeared into the next mode). The values are
  smoothed relative to the segment's first finite value and shifted back, which is the same average
  (its weights sum to 1) but keeps a constant segment *exactly* constant in floating point.
- w = 0 means off: the smoothed series is the raw one.

`debiased_ema` smooths a whole series (a log-depth scan, no Python loop per point, so a million
points take tens of milliseconds); `SegmentedEma` carries the state across appended chunks, so a
live plot only smooths its new points. `ColumnsEma` and `debiased_ema_columns` do the same for each
column of a matrix (the loss terms).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

MAX_WEIGHT = 0.999
DEFAULT_WEIGHT = 0.6
_NEGLIGIBLE = 1e-300  # a weight below this cannot change a float64 sum (and subnormal products are slow)


def check_weight(weight: float) -> float:
    weight = float(weight)
    if not 0.0 <= weight <= MAX_WEIGHT:
        raise ValueError(f"smoothing weight must be between 0 and {MAX_WEIGHT}, not {weight!r}")
    return weight


@dataclass
class _State:
    """The running average of one segment: reference value, undebiased average, finite values seen."""

    reference: float = math.nan
    last: float = 0.0
    count: int = 0


def _ema_scan(deltas: np.ndarray, weight: float, last: float) -> np.ndarray:
    """last_k = w * last_{k-1} + (1 - w) * delta_k for every k, starting from `last`.

    A Hillis-Steele scan: after the pass with shift s every entry holds the sum over its last 2s
    terms, so log2(n) whole-array passes replace the sequential loop. Passes stop once w**s is
    below 1e-300, when older terms can no longer change a float64.
    """
    out = (1.0 - weight) * deltas
    shift, factor = 1, weight
    while shift < len(out) and factor > _NEGLIGIBLE:
        out[shift:] = out[shift:] + factor * out[:-shift]  # the right side is built before it is stored
        shift, factor = shift * 2, factor * factor
    if last != 0.0:
        out += last * weight ** np.arange(1, len(out) + 1)
    return out


def _extend_segment(values: np.ndarray, weight: float, state: _State) -> np.ndarray:
    """Smooth `values` (all in one segment) continuing from `state`, which is updated."""
    shown = np.full(len(values), np.nan)
    finite = np.isfinite(values)
    kept = values[finite]
    if not len(kept):
        return shown
    if weight == 0.0:
        shown[finite] = kept
        return shown
    if state.count == 0:
        state.reference = float(kept[0])
    last = _ema_scan(kept - state.reference, weight, state.last)
    counts = state.count + np.arange(1, len(kept) + 1)
    # 1 - w**k, without the cancellation of 1 - (a number close to 1) when w is close to 1.
    debias = -np.expm1(counts * math.log(weight))
    shown[finite] = state.reference + last / debias
    state.last, state.count = float(last[-1]), int(counts[-1])
    return shown


class SegmentedEma:
    """The debiased EMA of a series that grows, restarting at each new segment."""

    def __init__(self, weight: float = DEFAULT_WEIGHT) -> None:
        self.weight = check_weight(weight)
        self._state = _State()

    def extend(self, values: np.ndarray | Sequence[float], restarts: Sequence[int] = ()) -> np.ndarray:
        """The smoothed values of the next `values`; a new segment begins at each index in `restarts`
        (0 included: the first value then starts one)."""
        values = np.asarray(values, dtype=np.float64)
        out = np.empty(len(values))
        bounds = sorted({int(i) for i in restarts if 0 <= i <= len(values)} | {0, len(values)})
        for start, end in zip(bounds, bounds[1:]):
            if start in restarts:
                self._state = _State()
            out[start:end] = _extend_segment(values[start:end], self.weight, self._state)
        return out


def debiased_ema(values: np.ndarray | Sequence[float], weight: float = DEFAULT_WEIGHT,
                 segment_starts: Sequence[int] = ()) -> np.ndarray:
    """The smoothed copy of `values`, each segment (beginning at the indices in `segment_starts`
    and at 0) smoothed on its own."""
    return SegmentedEma(weight).extend(values, [0, *segment_starts])


class ColumnsEma:
    """`SegmentedEma` of every column of a growing (N, k) matrix, the columns restarting together (the
    loss terms: each is smoothed on its own, at the loss's mode segments)."""

    def __init__(self, columns: int, weight: float = DEFAULT_WEIGHT) -> None:
        self.weight = check_weight(weight)
        self._emas = [SegmentedEma(weight) for _ in range(columns)]

    def extend(self, values: np.ndarray, restarts: Sequence[int] = ()) -> np.ndarray:
        values = np.asarray(values, dtype=np.float64).reshape(-1, len(self._emas))
        out = np.empty(values.shape)
        for column, ema in enumerate(self._emas):
            out[:, column] = ema.extend(values[:, column], restarts)
        return out


def debiased_ema_columns(values: np.ndarray, weight: float = DEFAULT_WEIGHT,
                         segment_starts: Sequence[int] = ()) -> np.ndarray:
    """`debiased_ema` of each column of the (N, k) matrix `values`."""
    values = np.asarray(values, dtype=np.float64)
    return ColumnsEma(values.shape[1], weight).extend(values, [0, *segment_starts])
