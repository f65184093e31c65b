import csv
import json

import pandas as pd
import pytest

from geogui.cli.export import main as export_main
from geogui.rundir.export.tables import SCALAR_COLUMNS, run_summary, write_csv
from geogui.engine.metrics import BatchRecord
from geogui.rundir.reader import read_lines
from geogui.rundir.recorder import record_run
from geogui.rundir.runlog import RunLog
from geogui.engine.trainer import Trainer

from tests.conftest import tiny_settings
from tests.rundir.synthetic_run import synthetic_run


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
    # Named by the expert each presentation is forced to, as the plots name them.
    assert angles[:5] == ["angle_E0_d0", "angle_E0_d1", "angle_E0_d2", "angle_E0_d3", "angle_E1_d0"]
    assert angles[-1] == "angle_G3_d3" and len(angles) == 32
    assert [c for c in frame.columns if c.startswith("load_")] == [f"load_E{i}" for i in range(4)] + [
        f"load_G{i}" for i in range(4)]
    assert list(frame["step"]) == list(range(1, 11))
    assert list(frame["mode"]) == ["standard"] * 5 + ["geometric_fast"] * 5
    assert frame.loc[:4, "angle_E0_d0"].isna().all() and frame.loc[5:, "angle_E0_d0"].notna().all()
    assert frame["eval_loss"].notna().sum() == 2 and frame.loc[4, "eval_loss"] > 0
    assert frame.filter(like="load_").sum(axis=1).round(6).eq(1.0).all()
    # The numbers are the run's own, not reformatted approximations.
    batches = [r for r in read_lines(run_dir).lines if r["kind"] == "batch"]
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


def test_csv_is_the_records_written_out(tmp_path):
    """The CSV made from the run's columns holds exactly what the records hold."""
    run = synthetic_run(tmp_path / "run", 600)
    out = tmp_path / "run.csv"
    write_csv(run, out)
    records = read_lines(run).lines
    evals = {r["step"]: r["loss"] for r in records if r["kind"] == "eval"}
    expected = []
    for r in (r for r in records if r["kind"] == "batch"):
        angles = [a for row in r["rotation_angles"] for a in row] if r["rotation_angles"] else [None] * 32
        utilization = [u for row in r["expert_utilization"] for u in row] if r["expert_utilization"] else [None] * 32
        similarity = [r["hidden_similarity"][p][q] for p in range(8) for q in range(p + 1, 8)] \
            if r["hidden_similarity"] else [None] * 28
        expected.append([*(r.get(c) for c in SCALAR_COLUMNS), evals.get(r["step"]), *angles, *r["expert_load"],
                         *r["ghost_activation"], *utilization, *(r["routing_entropy"] or [None] * 4),
                         *(r["layer_overflow"] or [None] * 4), *similarity])
    with open(out, newline="") as handle:
        rows = list(csv.reader(handle))[1:]
    assert rows == [["" if v is None else str(v) for v in row] for row in expected]
    assert rows[6][SCALAR_COLUMNS.index("loss")] == ""  # not finite: an empty cell
    summary = run_summary(run)
    assert summary["steps"] == 600 and summary["batches_per_mode"] == {
        "standard": 200, "geometric": 200, "geometric_fast": 200}
    assert summary["best_eval_step"] == summary["final_eval_step"] == 600


def test_exports_hold_no_python_object_per_batch(tmp_path, monkeypatch):
    """The app exports a live run every few minutes: a long run must not need a record per batch
    (6 KB each with the routing numbers), which the allocator then keeps, so the process grows with
    the run. What an export holds per batch is the columns (746 bytes at the default model, about
    2.4 times that while they are read); the JSON is parsed a chunk at a time."""
    import tracemalloc

    from geogui.rundir import reader, segments
    from geogui.rundir.reader import read_columns

    monkeypatch.setattr(reader, "CHUNK_BYTES", 1 << 20)  # a few chunks at this length, as a long run has
    monkeypatch.setattr(segments, "SEGMENT_BYTES", 1 << 20)

    runs = {batches: synthetic_run(tmp_path / f"run-{batches}", batches) for batches in (6_000, 18_000)}

    def peak(batches: int, export) -> int:
        tracemalloc.start()
        try:
            export(runs[batches])
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    def per_batch(export) -> float:
        return (peak(18_000, export) - peak(6_000, export)) / 12_000

    column_bytes = read_columns(runs[6_000]).nbytes() / 6_000
    reading = per_batch(read_columns)
    assert reading < 3 * column_bytes, f"reading the columns: {reading:.0f} bytes per batch"
    for export in (lambda run: write_csv(run, run / "out.csv"), run_summary):
        held = per_batch(export)
        assert held < 1.1 * reading, f"{held:.0f} bytes per batch; reading the columns: {reading:.0f}"
