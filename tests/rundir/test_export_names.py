"""Exported columns and tags name the presentations by their experts, as the plots do."""

from __future__ import annotations

from types import SimpleNamespace

from geogui.rundir.export.names import angle_names, presentation_names
from geogui.rundir.export.tables import csv_header
from geogui.settings import ModelSettings


def test_angle_columns_are_named_by_the_runs_experts():
    model = ModelSettings(num_experts=2, num_ghost_experts=1, rotation_dimensions=2, d_model=32)
    header = csv_header(model)
    assert [c for c in header if c.startswith("angle_")] == [
        "angle_E0_d0", "angle_E0_d1", "angle_E1_d0", "angle_E1_d1", "angle_G0_d0", "angle_G0_d1"]
    assert "angle_p0_d0" not in header


def test_settings_that_do_not_name_each_presentation_keep_the_old_names():
    unnamed = SimpleNamespace(expert_names=(), presentations=2, rotation_dimensions=1)
    assert presentation_names(unnamed) == ("p0", "p1")
    assert angle_names(unnamed) == ["p0_d0", "p1_d0"]
