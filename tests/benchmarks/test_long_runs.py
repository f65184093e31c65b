"""benchmarks/long_runs.py must keep working: a small run of it, every figure printed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "long_runs.py"


@pytest.mark.slow
def test_long_runs_prints_every_figure(tmp_path):
    out = tmp_path / "figures.json"
    done = subprocess.run([sys.executable, str(SCRIPT), "--steps", "3000", "--before-max", "3000", "--no-redraw",
                           "--keep", str(tmp_path / "runs"), "--json", str(out)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(out.read_text())["3000"]
    # the geometric lines carry the 8 x 8 hidden similarity since the per-layer routing numbers
    assert figures["bytes_per_step_compact"] < 1450 < figures["bytes_per_step_long"]
    assert figures["open_compact_s"] > 0 and figures["before_open_s"] > 0
    assert figures["open_compact_tracemalloc_mb"] < figures["before_rss_added_mb"]
    assert "open_compact_bytes_per_step_3000=" in done.stdout
