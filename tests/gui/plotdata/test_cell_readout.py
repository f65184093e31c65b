"""What the heatmaps' readouts say about a cell."""

from __future__ import annotations

import math

from geogui.gui.plotdata.cell_readout import (MatrixCell, StepCell, matrix_readout, step_readout, utilization_readout,
                                              value_text)


def test_values_read_with_two_decimals_unless_tiny_or_huge():
    assert [value_text(v) for v in (0.0, 0.85, 1.0, -0.3)] == ["0.00", "0.85", "1.00", "-0.30"]
    assert value_text(0.00042) == "0.00042" and value_text(123456.0) == "1.23e+05"
    assert value_text(math.nan) == "no value"


def test_utilization_says_dead_fair_or_dormant():
    def cell(value: float) -> MatrixCell:
        return MatrixCell(2, 3, "layer 2", "E3", value)

    assert utilization_readout(cell(0.0)) == "layer 2 · E3: 0.00 (dead)"
    assert utilization_readout(cell(0.999)) == "layer 2 · E3: 1.00 (fair share)"
    assert utilization_readout(cell(1.4)) == "layer 2 · E3: 1.40"
    assert utilization_readout(cell(math.nan)) == "layer 2 · E3: dormant (not routable)"
    assert matrix_readout(cell(0.0)) == "layer 2 · E3: 0.00"


def test_a_step_cell_names_its_step_or_its_steps():
    assert step_readout(StepCell(3, "E3", 1200, 1200, 0.85)) == "E3 at step 1,200: 0.85"
    assert step_readout(StepCell(3, "E3", 1153, 1280, 0.5)) == "E3 at steps 1,153–1,280: 0.50"
