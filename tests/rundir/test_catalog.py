import json
import math

import numpy as np
import pytest

from geogui.engine.log_lines import batch_line, record_from_json
from geogui.engine.metrics import BatchRecord, EvalRecord, ModeChange, Rewind, RunEvent
from geogui.rundir.recorder import record_run
from geogui.rundir.runlog import RunLog, RunLogError
from geogui.rundir.catalog import MetricsTail, delete_run, list_runs, rename_run
from geogui.rundir.meta import RunStatus, read_meta, write_meta
from geogui.engine.trainer import Trainer

from tests.conftest import tiny_settings


def make_run(root, name, steps=4, switch_at=None):
    settings = tiny_settings(steps=steps, mode="standard", eval_interval=2)
    trainer = Trainer(settings)
    events = []
    for event in record_run(trainer, RunLog(root / name, settings)):
        events.append(event)
        if switch_at and isinstance(event, BatchRecord) and event.step == switch_at:
            trainer.request_mode("geometric_fast")
    return events


def test_records_round_trip_through_json_with_nan_kept():
    record = BatchRecord(
        step=3, epoch=0.5, mode="geometric", penalty_weight=0.001, batch_time_s=0.1, data_time_s=0.01,
        loss=float("nan"), task_loss=2.0, aux_loss=0.0, penalty=0.1, orthogonality=0.2, specialization=0.3,
        lr_model=1e-3, lr_rotation=1e-4, rotation_angles=np.arange(8.0).reshape(4, 2),
        expert_load=np.full(4, 0.25), ghost_activation=np.zeros(2), saturation=0.0, tokens_per_s=100.0,
        tokens_seen=64, memory_bytes=1e6, wall_time_s=1.0)
    back = record_from_json(json.loads(json.dumps(record.to_json())))
    assert math.isnan(back.loss) and back.task_loss == 2.0 and back.step == 3
    assert np.array_equal(back.rotation_angles, record.rotation_angles)
    assert np.array_equal(back.expert_load, record.expert_load)
    assert record_from_json(EvalRecord(4, 1.5, math.exp(1.5)).to_json()) == EvalRecord(4, 1.5, math.exp(1.5))


def test_list_rename_and_delete_runs(tmp_path):
    make_run(tmp_path, "a", steps=3)
    make_run(tmp_path, "b", steps=6, switch_at=3)
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "meta.json").write_text("{not json")
    (tmp_path / "not-a-run").mkdir()
    runs = {run.name: run for run in list_runs(tmp_path)}
    assert set(runs) == {"a", "b", "broken"}
    assert runs["b"].modes == ("standard", "geometric_fast") and runs["b"].steps == 6
    assert runs["a"].status is RunStatus.FINISHED and runs["a"].last_loss > 0
    assert runs["broken"].status is RunStatus.UNREADABLE and "meta.json" in runs["broken"].problem

    renamed = rename_run(tmp_path / "a", "baseline")
    assert renamed.name == "baseline" and read_meta(renamed).name == "baseline"
    with pytest.raises(RunLogError, match="exists"):
        rename_run(renamed, "b")
    with pytest.raises(RunLogError, match="not a usable run name"):
        rename_run(renamed, "../escape")
    delete_run(renamed)
    assert not renamed.exists()
    with pytest.raises(RunLogError, match="not a run directory"):
        delete_run(tmp_path / "not-a-run")
    assert (tmp_path / "not-a-run").exists()


def test_a_live_run_cannot_be_deleted(tmp_path):
    settings = tiny_settings(steps=2)
    log = RunLog(tmp_path / "live", settings)  # this process is writing it
    with pytest.raises(RunLogError, match="still being written"):
        delete_run(tmp_path / "live")
    log.close("stopped")
    delete_run(tmp_path / "live")


def test_tail_follows_a_growing_file_and_waits_for_complete_lines(tmp_path):
    events = make_run(tmp_path, "run", steps=6, switch_at=2)
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines(keepends=True)
    growing = tmp_path / "follow"
    growing.mkdir()
    target = growing / "metrics.jsonl"
    tail = MetricsTail(growing)
    assert tail.poll() == ([], False)  # no file yet
    target.write_text("".join(lines[:3]) + lines[3][:10])  # a line half written
    first, reset = tail.poll()
    assert not reset and len(first) == 3 and tail.incomplete_tail
    with open(target, "a") as handle:
        handle.write(lines[3][10:] + "".join(lines[4:]))
    rest, reset = tail.poll()
    assert not reset and not tail.incomplete_tail
    followed = first + rest
    expected = [e for e in events if isinstance(e, (BatchRecord, EvalRecord, ModeChange))]
    assert [type(r).__name__ for r in followed if not isinstance(r, RunEvent)] == [type(e).__name__ for e in expected]
    assert [r.step for r in followed if isinstance(r, BatchRecord)] == list(range(1, 7))
    assert tail.poll() == ([], False)


def test_tail_resets_on_a_resume_marker(tmp_path):
    make_run(tmp_path, "run", steps=4)
    tail = MetricsTail(tmp_path / "run")
    before, _ = tail.poll()
    with open(tmp_path / "run" / "metrics.jsonl", "a") as handle:
        handle.write(json.dumps({"kind": "resumed", "step": 2}) + "\n")
    records, reset = tail.poll()
    assert reset
    assert [r.step for r in records if isinstance(r, BatchRecord)] == [1, 2]


def batch(step: int, loss: float) -> BatchRecord:
    return BatchRecord(
        step=step, epoch=step * 1e-3, mode="standard", penalty_weight=0.001, batch_time_s=0.01, data_time_s=1e-4,
        loss=loss, task_loss=loss, aux_loss=0.01, penalty=0.0, orthogonality=0.0, specialization=0.0,
        lr_model=1e-3, lr_rotation=0.0, rotation_angles=None, expert_load=np.full(8, 0.125),
        ghost_activation=np.zeros(4), saturation=0.0, tokens_per_s=1e4, tokens_seen=step * 128, memory_bytes=1e6,
        wall_time_s=step * 0.01)


def test_a_run_being_written_is_listed_at_the_step_its_log_has_reached(tmp_path):
    """meta.json is written at each event, not at each batch: the list takes a live run's step count
    and last loss from the end of its log, not from meta.json's last event."""
    log = RunLog(tmp_path / "live", tiny_settings(steps=50))
    try:
        for step in range(1, 8):
            log.write(batch(step, float(np.float32(3 - step * 0.1))))
        assert read_meta(log.path).steps_done == 0  # what meta.json still says
        [live] = list_runs(tmp_path)
        assert live.status is RunStatus.RUNNING and live.steps == 7
        assert live.last_loss == float(np.float32(3 - 0.7))
        log.write(RunEvent(7, "paused", "paused after step 7"))  # more than a window of lines after the batch
        for _ in range(1500):
            log.write(RunEvent(7, "control_rejected", "x" * 80))
        assert list_runs(tmp_path)[0].steps == 7
    finally:
        log.close("stopped")
    assert list_runs(tmp_path)[0].steps == 7 and read_meta(log.path).steps_done == 7


def test_a_crashed_run_is_listed_at_the_step_its_log_reached(tmp_path):
    log = RunLog(tmp_path / "run", tiny_settings(steps=50))
    log.write(batch(1, 2.0))
    log.close("stopped")
    meta = read_meta(log.path)
    meta.status, meta.pid = RunStatus.RUNNING, 2**22 + 12345  # its writer died before closing it
    write_meta(log.path, meta)
    with open(log.path / "metrics.jsonl", "a") as handle:
        handle.write("".join(batch_line(batch(step, 2.5)) + "\n" for step in (2, 3)) + '{"kind":"batch","st')
    [run] = list_runs(tmp_path)
    assert (run.status, run.steps, run.last_loss) == (RunStatus.CRASHED, 3, 2.5)  # the torn line waits
    with open(log.path / "metrics.jsonl", "a") as handle:
        handle.write("\n" + json.dumps(Rewind(2).to_json()) + "\n")  # continued from step 2, no batch yet
    [run] = list_runs(tmp_path)
    assert (run.steps, run.last_loss) == (2, None)
