"""What a heatmap says about the cell under the cursor. No Qt: the heatmaps find the cell, a formatter
(one of these, or the caller's own) phrases it.

A matrix cell is named by its row and column ("layer 2 · E3: 0.00 (dead)"); a cell of a heatmap over
training steps by its row and the steps it averages ("E3 at step 1,200: 0.85", or "E3 at steps
1,153–1,280: 0.85" once a cell stands for several steps).
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class MatrixCell:
    """A cell of a categorical heatmap: its row and column (indices and names) and its value."""

    row: int
    col: int
    row_name: str
    col_name: str
    value: float


@dataclass(frozen=True)
class StepCell:
    """A cell of a heatmap over steps: its row, the steps `first`..`last` it averages, its value."""

    row: int
    name: str
    first: int
    last: int
    value: float


def value_text(value: float) -> str:
    """Two decimals for the usual magnitudes (0.85, 1.00, 0.00), three significant digits otherwise."""
    if not math.isfinite(value):
        return "no value"
    if value == 0 or 0.01 <= abs(value) < 1000:
        return f"{value:.2f}"
    return f"{value:.3g}"


def matrix_readout(cell: MatrixCell) -> str:
    return f"{cell.row_name} · {cell.col_name}: {value_text(cell.value)}"


def utilization_readout(cell: MatrixCell) -> str:
    """An expert's share of its layer's routed slots, against the fair share (1): a routable expert with
    none is dead; a ghost that cannot be routed to (NaN) is dormant."""
    where = f"{cell.row_name} · {cell.col_name}"
    if math.isnan(cell.value):
        return f"{where}: dormant (not routable)"
    note = " (dead)" if cell.value == 0 else " (fair share)" if round(cell.value, 2) == 1 else ""
    return f"{where}: {value_text(cell.value)}{note}"


def step_readout(cell: StepCell) -> str:
    steps = f"step {cell.first:,}" if cell.first == cell.last else f"steps {cell.first:,}–{cell.last:,}"
    return f"{cell.name} at {steps}: {value_text(cell.value)}"
