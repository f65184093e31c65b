"""A run directory as geogui 0.1.0 wrote it reads with today's readers: its meta.json, its records,
its columns, its row in the Runs panel and its exports.

fixtures/run_written_by_0_1_0 was recorded by 0.1.0's RunLog (argv, host and platform replaced): a
3-step tiny run, paused and unpaused after step 1, switched to geometric_fast for step 2, stopped
after step 2, then continued from its checkpoint at step 1 (in standard, the checkpoint's mode) to
step 3. Its log holds every kind of line 0.1.0 writes, "resumed" in both of its meanings (the end
of the pause, and the continuation's rewind), and a step 2 that the continuation superseded.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from geogui.engine.log_lines import record_from_json
from geogui.engine.metrics import (

    BatchRecord,

    EvalRecord,

    EventKind,

    ModeChange,

    RecordKind,

    Rewind,

    RunEvent,

    RunFinished,

)
from geogui.gui.plotdata.run_source import RunShape, load_run
from geogui.rundir.catalog import run_info
from geogui.rundir.export.tables import write_csv
from geogui.rundir.meta import RunStatus, read_meta, write_meta
from geogui.rundir.reader import last_logged, read_columns, read_lines, read_records
from geogui.settings import Mode

FIXTURE = Path(__file__).parent / "fixtures" / "run_written_by_0_1_0"
LOSSES = [5.537411212921143, 5.449407577514648, 5.322695255279541]  # as the trainer had them (float32)
NAMES = ("E0", "E1", "E2", "E3", "G0", "G1", "G2", "G3")
EVENTS = [RunEvent(1, EventKind.PAUSED, "paused after step 1"), RunEvent(1, EventKind.UNPAUSED, "resumed at step 2"),
          RunEvent(1, EventKind.CHECKPOINT_LOADED, "resumed from the checkpoint at step 1 (standard)")]


@pytest.fixture
def run(tmp_path) -> Path:
    """A copy: a reader may write metrics.cache/ next to the log."""
    return Path(shutil.copytree(FIXTURE, tmp_path / FIXTURE.name))


def test_its_meta_json_reads_typed_and_is_written_back_unchanged(run):
    meta = read_meta(run)
    assert (meta.name, meta.status, meta.effective_status()) == (run.name, RunStatus.FINISHED, RunStatus.FINISHED)
    assert (meta.steps_done, meta.total_steps, meta.planned_steps, meta.last_loss) == (3, 3, 3, LOSSES[2])
    assert (meta.device, meta.requested_device, meta.parameters) == ("cpu", "cpu", 60512)
    assert meta.started_at == "2026-12-01T12:23:44+00:00" and meta.ended_at == "2026-12-01T12:23:51+00:00"
    assert meta.data_source == "embedded lambda-calculus corpus" and meta.versions["geogui"] == "0.1.0"
    assert meta.settings_model().run.mode is Mode.STANDARD and meta.settings["run"]["steps"] == 3
    assert meta.model_settings().expert_names == NAMES
    assert meta.modes == ("standard", "geometric_fast")
    assert meta.mode_changes == [ModeChange(2, "geometric_fast", 0.001, "standard", 0.001)]
    assert meta.events == EVENTS and [type(e.event) for e in meta.events] == [EventKind] * 3
    assert [(c.from_step, c.at) for c in meta.continuations] == [(1, "2026-12-01T12:23:51+00:00")]
    assert (meta.pid, meta.host, meta.writer) == (4258, "example-host", "21a0f2d1a3751c78")
    assert meta.world_size is None and meta.error is None  # not written by the app's runs
    written = json.loads((run / "meta.json").read_text(encoding="utf-8"))
    assert meta.to_json() == written
    write_meta(run, meta)
    assert json.loads((run / "meta.json").read_text(encoding="utf-8")) == written


def test_its_lines_read_as_written_and_as_the_run_stands(run):
    raw = read_lines(run, rewind=False)
    assert (len(raw.lines), raw.skipped_lines, raw.incomplete_tail) == (14, 0, False)
    kinds = [line["kind"] for line in raw.lines]
    assert kinds == ["batch", "event", "event", "mode_change", "batch", "eval", "finished", "resumed", "event",
                     "batch", "eval", "batch", "eval", "finished"]
    assert record_from_json(raw.lines[7]) == Rewind(1) and record_from_json(raw.lines[6]) == RunFinished(2, "stopped")
    assert [record_from_json(raw.lines[i]).event for i in (1, 2)] == [EventKind.PAUSED, EventKind.UNPAUSED]
    stands = read_lines(run).lines  # superseded: the first step 2, its evaluation and the mode change
    assert [(line["kind"], line.get("step")) for line in stands] == [
        ("batch", 1), ("event", 1), ("event", 1), ("finished", 2), ("event", 1), ("batch", 2), ("eval", 2),
        ("batch", 3), ("eval", 3), ("finished", 3)]
    assert stands[0]["expert_load"] == pytest.approx([0.26171875, 0.22265625, 0.24414062, 0.27148438, 0, 0, 0, 0])


def test_its_records_and_columns_are_the_run_as_it_stands(run):
    records = read_records(run)
    assert [(type(r).__name__, r.step) for r in records] == [
        ("BatchRecord", 1), ("RunEvent", 1), ("RunEvent", 1), ("RunEvent", 1), ("BatchRecord", 2),
        ("EvalRecord", 2), ("BatchRecord", 3), ("EvalRecord", 3)]
    batches = [r for r in records if isinstance(r, BatchRecord)]
    assert [b.loss for b in batches] == LOSSES and {b.mode for b in batches} == {"standard"}
    assert [r for r in records if isinstance(r, RunEvent)] == EVENTS
    assert [r.kind for r in records[:2]] == [RecordKind.BATCH, RecordKind.EVENT]
    assert [r for r in records if isinstance(r, EvalRecord)][0] == EvalRecord(2, 5.37148380279541, 215.18191847373964)

    columns = read_columns(run)
    assert columns.step.tolist() == [1, 2, 3] and columns.loss.tolist() == LOSSES
    assert columns.mode_names() == ["standard"] * 3 and columns.mode_changes == []
    assert columns.eval_step.tolist() == [2, 3] and columns.events == EVENTS and columns.skipped_lines == 0
    assert columns.rotation_angles.shape == (3, 32) and np.isnan(columns.rotation_angles).all()
    assert columns.expert_load.shape == (3, 8) and columns.ghost_activation.shape == (3, 4)
    assert np.array_equal(columns.expert_load, np.array([b.expert_load for b in batches], dtype=np.float32))
    assert [(type(r).__name__, r.step) for r in columns.records()] == [(type(r).__name__, r.step) for r in records]
    assert last_logged(run) == (3, LOSSES[2])


def test_it_is_listed_opened_and_exported(run, tmp_path):
    info = run_info(run)
    assert (info.status, info.steps, info.last_loss, info.modes) == (
        RunStatus.FINISHED, 3, LOSSES[2], ("standard", "geometric_fast"))
    loaded = load_run(run)
    assert loaded.notes == [] and loaded.status is RunStatus.FINISHED and loaded.total_steps == 3
    assert loaded.shape == RunShape(8, 4, NAMES, 2.0, 0.05) and len(loaded.columns) == 3 and loaded.name == run.name
    assert write_csv(run, tmp_path / "run.csv") == 3
    with open(tmp_path / "run.csv", newline="") as handle:
        header, *rows = list(csv.reader(handle))
    assert [row[0] for row in rows] == ["1", "2", "3"] and "load_G3" in header
