"""benchmarks/soak.py: its verdict counts memory, and it says what the plots hold."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "soak.py"


def load_soak():
    spec = importlib.util.spec_from_file_location("soak", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_slope_is_over_the_second_half_and_a_step_is_not_a_slope():
    soak = load_soak()
    rising = [(t, 500 + 2 * t / 60) for t in range(0, 600, 2)]  # 2 MB/min all along
    assert abs(soak.second_half_slope(rising) - 2.0) < 1e-9
    step = [(t, 500 + (30 if t > 100 else 0)) for t in range(0, 600, 2)]  # a one-off 30 MB, early
    assert abs(soak.second_half_slope(step)) < 1e-9
    assert soak.second_half_slope([(0, 1.0), (2, 2.0)]) is None


def test_plot_store_bytes_from_the_store_or_its_columns():
    soak = load_soak()

    class Store:
        def nbytes(self):
            return 1234

    class Column:
        def __init__(self, rows):
            self._data = np.zeros(rows)

    class Columns:
        def __init__(self):
            self.step, self.loss, self.name = Column(10), Column(20), "not an array"

    assert soak.plot_store_bytes(Store()) == 1234
    assert soak.plot_store_bytes(Columns()) == 30 * 8


def test_a_soak_beyond_its_memory_target_fails():
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    command = [sys.executable, str(SCRIPT), "--minutes", "0.3", "--baseline-s", "4", "--max-growth-mb", "-1",
               "--max-slope-mb-per-min", "1e9"]  # a short soak's slope is its start-up
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    out = dict(line.split("=", 1) for line in result.stdout.splitlines() if "=" in line and ":" not in line[:20])
    assert result.returncode == 1, result.stdout + result.stderr
    assert out["result"] == "FAIL" and int(out["failures"]) == 1
    assert "failure: RSS grew" in result.stdout
    assert float(out["plot_store_mb"].split()[0]) > 0 and int(out["steps"]) > 0
