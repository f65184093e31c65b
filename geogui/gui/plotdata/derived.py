"""Values the plots derive from a run's series: one line per run when runs are compared, and where the
non-finite loss markers sit. Numpy only."""

from __future__ import annotations

import numpy as np

from geogui.gui.plotdata.run_series import RunSeries


def mean_angle_norm(series: RunSeries) -> np.ndarray:
    """Per batch, the mean over presentations of the norm of its rotation angles."""
    if not series.presentations or not len(series):
        return np.full(len(series), np.nan)
    return series.angle_norms().mean(axis=1)  # NaN where the batch had no angles (standard)


def busiest_expert(series: RunSeries) -> np.ndarray:
    """Per batch, the load of the expert that took the largest share."""
    if series.expert_load is None or not series.expert_load.view().shape[1]:
        return np.full(len(series), np.nan)
    return series.expert_load.view().max(axis=1)


def mean_ghost(series: RunSeries) -> np.ndarray:
    """Per batch, the mean activation over the ghost experts."""
    if series.ghost_activation is None or not series.ghost_activation.view().shape[1]:
        return np.full(len(series), np.nan)
    return series.ghost_activation.view().mean(axis=1)


def nonfinite_heights(series: RunSeries) -> np.ndarray:
    """Where to draw each non-finite loss (it has no value): at the last finite smoothed loss before it."""
    steps = series.nonfinite_step.view()
    heights = np.zeros(len(steps))
    if len(steps):
        smoothed = series.loss_ema.view()
        finite = np.flatnonzero(np.isfinite(smoothed))
        if len(finite):
            rows = np.searchsorted(series.step.view(), steps)
            heights = smoothed[finite[np.maximum(np.searchsorted(finite, rows) - 1, 0)]]
    return heights
