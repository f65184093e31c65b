"""geogui-train --compare-modes on the tiny model: three runs of one group, then the summary table."""

from __future__ import annotations

import json

import pytest

from geogui.cli.train import main
from geogui.rundir.comparison_summary import SUMMARY_MD
from geogui.rundir.meta import read_meta
from tests.conftest import tiny_settings


@pytest.fixture
def settings_file(tmp_path):
    path = tmp_path / "settings.json"
    path.write_text(tiny_settings(steps=4, eval_interval=2).model_dump_json())
    return path


def test_compare_modes_makes_three_runs_and_prints_the_table(tmp_path, settings_file, capsys):
    out = tmp_path / "runs"
    code = main(["--compare-modes", "--settings", str(settings_file), "--steps", "3", "--out", str(out), "--quiet"])
    assert code == 0
    runs = sorted(path for path in out.iterdir() if (path / "meta.json").exists())
    assert [read_meta(path).initial_mode for path in runs] == ["geometric", "geometric_fast", "standard"]
    groups = {read_meta(path).group for path in runs}
    assert len(groups) == 1 and all(read_meta(path).steps_done == 3 for path in runs)
    captured = capsys.readouterr()
    table = [line for line in captured.out.splitlines() if line.startswith("| ")]
    assert table[0].startswith("| mode | steps | ms/step | tokens/s | eval loss @ step 3")
    assert [row.split(" | ")[0] for row in table[2:]] == ["| standard", "| geometric_fast", "| geometric"]
    assert "[1/3] standard" in captured.err and "[3/3] geometric" in captured.err
    group = groups.pop()
    assert (out / group / SUMMARY_MD).read_text().count("\n| ") == 5


def test_equal_time_needs_its_seconds(settings_file, capsys):
    assert main(["--compare-modes", "--settings", str(settings_file), "--equal", "time"]) == 2
    assert "--budget-seconds" in capsys.readouterr().err


def test_compare_modes_refuses_a_mode_and_a_resume(tmp_path, settings_file, capsys):
    assert main(["--compare-modes", "--settings", str(settings_file), "--mode", "standard"]) == 2
    assert main(["--compare-modes", "--resume", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "--mode" in err and "--resume" in err


def test_equal_time_stops_each_run_at_its_budget(tmp_path, settings_file, monkeypatch, capsys):
    # A clock that jumps a minute per reading: every run stops after its first batch, whatever the machine.
    import itertools

    from geogui.rundir import mode_comparison

    ticks = itertools.count()
    monkeypatch.setattr(mode_comparison, "wall_clock", lambda: 60.0 * next(ticks))
    out = tmp_path / "runs"
    code = main(["--compare-modes", "--settings", str(settings_file), "--equal", "time", "--budget-seconds", "30",
                 "--out", str(out), "--quiet"])
    assert code == 0
    metas = [read_meta(path) for path in out.iterdir() if (path / "meta.json").exists()]
    assert len(metas) == 3 and all(m.status == "stopped" and m.stopped_at_budget and m.steps_done == 1 for m in metas)
    assert json.loads(next(out.glob("*/comparison.json")).read_text())["modes"][0]["steps"] == 1
    assert capsys.readouterr().err.count("stopped at its budget:") == 3
