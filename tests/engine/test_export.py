import csv
import json

import pandas as pd
import pytest

from geogui.cli import export_main
from geogui.engine.export import SCALAR_COLUMNS, run_summary
from geogui.engine.metrics import BatchRecord
from geogui.engine.recorder import record_run
from geogui.engine.runlog import RunLog, read_run_records
from geogui.engine.trainer import Trainer

from .conftest import tiny_settings


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A real run: 5 standard batches, then 5 geometric_fast, evaluated every 5 steps."""
    path = tmp_path_factory.mktemp("export") / "run"
    settings = tiny_settings(steps=10, mode="standard", eval_interval=5)
    trainer = Trainer(settings)
    for event in record_run(trainer, RunLog(path, settings)):
        if isinstance(event, BatchRecord) and event.step == 5:
            trainer.request_mode("geometric_fast")
    return path


def test_csv_has_one_row_per_batch_and_the_specified_columns(run_dir, tmp_path):
    out = tmp_path / "run.csv"
    assert export_main([str(run_dir), "-o", str(out)]) == 0
    frame = pd.read_csv(out)
    assert len(frame) == 10
    assert list(frame.columns[: len(SCALAR_COLUMNS)]) == list(SCALAR_COLUMNS)
    angles = [c for c in frame.columns if c.startswith("angle_")]
    assert angles[0] == "angle_p0_d0" and angles[-1] == "angle_p7_d3" and len(angles) == 32
    assert [c for c in frame.columns if c.startswith("load_")] == [f"load_E{i}" for i in range(4)] + [
        f"load_G{i}" for i in range(4)]
    assert list(frame["step"]) == list(range(1, 11))
    assert list(frame["mode"]) == ["standard"] * 5 + ["geometric_fast"] * 5
    assert frame.loc[:4, "angle_p0_d0"].isna().all() and frame.loc[5:, "angle_p0_d0"].notna().all()
    assert frame["eval_loss"].notna().sum() == 2 and frame.loc[4, "eval_loss"] > 0
    assert frame.filter(like="load_").sum(axis=1).round(6).eq(1.0).all()
    # The numbers are the run's own, not reformatted approximations.
    batches = [r for r in read_run_records(run_dir) if r["kind"] == "batch"]
    assert frame["loss"].tolist() == [r["loss"] for r in batches]
    with open(out, newline="") as handle:  # plain csv module too, as a spreadsheet would read it
        assert len(list(csv.reader(handle))) == 11


def test_jsonl_and_summaries(run_dir, tmp_path):
    assert export_main([str(run_dir), "-o", str(tmp_path / "copy.jsonl")]) == 0
    lines = [json.loads(line) for line in (tmp_path / "copy.jsonl").read_text().splitlines()]
    assert sum(1 for r in lines if r["kind"] == "batch") == 10

    summary = run_summary(run_dir)
    assert set(summary["median_batch_time_s"]) == {"standard", "geometric_fast"}
    assert summary["ratio_to_standard"]["standard"] == 1.0
    assert summary["ratio_to_standard"]["geometric_fast"] == pytest.approx(
        summary["median_batch_time_s"]["geometric_fast"] / summary["median_batch_time_s"]["standard"])
    assert summary["best_eval_loss"] <= summary["final_eval_loss"] and summary["final_eval_step"] == 10
    assert export_main([str(run_dir), "-o", str(tmp_path / "summary.json")]) == 0
    assert json.loads((tmp_path / "summary.json").read_text())["steps"] == 10
    assert export_main([str(run_dir), "-o", str(tmp_path / "summary.md")]) == 0
    text = (tmp_path / "summary.md").read_text()
    assert "| geometric_fast | 5 |" in text and "best eval loss" in text


def test_export_errors_are_one_line(run_dir, tmp_path, capsys):
    assert export_main([str(run_dir), "-o", str(tmp_path / "run.xlsx")]) == 2
    assert "unknown export format 'xlsx'" in capsys.readouterr().err
    blocked = tmp_path / "file"
    blocked.write_text("")
    assert export_main([str(run_dir), "-o", str(blocked / "run.csv")]) == 2
    assert "cannot write" in capsys.readouterr().err
    assert export_main([str(tmp_path / "nowhere"), "-o", str(tmp_path / "x.csv")]) == 2
    assert "meta.json: missing" in capsys.readouterr().err
