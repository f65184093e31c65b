"""A y range that fits the visible points without the far outliers. Numpy only.

The fit only moves the view: every point stays drawn, and the plot says how many are left outside.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from geogui.gui.plotdata.peak_reduce import visible_rows
from geogui.gui.plotdata.shown_series import ShownSeries

OUTLIER_FENCE = 3.0  # IQRs beyond the quartiles: Tukey's "far out" points are left out of the view
OUTLIER_SAMPLE = 65536  # points the quartiles are estimated from (the count outside is exact)


@dataclass(frozen=True)
class OutlierFit:
    bottom: float  # the view's y range, padded
    top: float
    outside: int  # points the range leaves out

    @property
    def note(self) -> str:
        return f"{self.outside} point{'s' if self.outside != 1 else ''} outside view"


def visible_values(shown: Sequence[ShownSeries], x_range: tuple[float, float] | None, log_y: bool
                   ) -> np.ndarray:
    """The finite y values of every series within `x_range` (None: all of them), as log10 on a log axis."""
    visible = []
    for series in shown:
        start, end = (0, len(series.x)) if x_range is None else visible_rows(series.x, *x_range)
        values = series.y[start:end]
        if log_y:
            with np.errstate(divide="ignore", invalid="ignore"):
                values = np.log10(values)
        visible.append(values[np.isfinite(values)])
    return np.concatenate(visible) if visible else np.zeros(0)


def fit_without_outliers(values: np.ndarray) -> OutlierFit | None:
    """The range of `values` inside Tukey's far fences (3 IQRs beyond the quartiles), padded by 5 %;
    None when there is nothing to fit."""
    if not len(values):
        return None
    sample = values[:: max(1, len(values) // OUTLIER_SAMPLE)]
    q1, q3 = np.quantile(sample, [0.25, 0.75])
    low = max(float(values.min()), q1 - OUTLIER_FENCE * (q3 - q1))
    high = min(float(values.max()), q3 + OUTLIER_FENCE * (q3 - q1))
    outside = int(np.count_nonzero((values < low) | (values > high)))
    pad = (high - low) * 0.05 or max(abs(high) * 0.05, 1e-9)
    return OutlierFit(low - pad, high + pad, outside)
