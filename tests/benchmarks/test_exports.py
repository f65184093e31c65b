"""benchmarks/exports.py must keep working: a small run of it, every figure printed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from geogui.rundir.export.tensorboard import tensorboard_available

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "exports.py"


@pytest.mark.skipif(not tensorboard_available(), reason="the optional tensorboard extra is not installed")
def test_exports_prints_every_figure():
    done = subprocess.run([sys.executable, str(SCRIPT), "--steps", "60"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    figures = dict(line.split("=", 1) for line in done.stdout.splitlines())
    assert figures["steps"] == "60" and figures["csv_columns"] == "133"
    for side in ("with", "without"):
        for name in ("csv_s", "summary_s", "tensorboard_s", "csv_bytes_per_batch", "event_bytes_per_batch"):
            assert float(figures[f"{side}_{name}"]) > 0, (side, name)
    # Only the run with the routing numbers has heatmaps: 60 of 500 planned steps, one every 5.
    assert figures["with_images"] == "12" and figures["without_images"] == "0"
    assert float(figures["with_csv_bytes_per_batch"]) > float(figures["without_csv_bytes_per_batch"])
    assert {"ratio_csv", "ratio_summary", "ratio_tensorboard"} <= set(figures)
