"""The run driver that geogui-train, torchrun's ranks and the app's worker share: a resume refused
with its reason before anything is written, a run driven to a closed log, a failure as one line."""

from __future__ import annotations

import json

import pytest
import torch

from geogui.engine import trainer as trainer_module
from geogui.engine.metrics import BatchRecord, RunFinished, RunStarted
from geogui.engine.model import MoETransformer
from geogui.rundir import driver as driver_module
from geogui.rundir.driver import ResumePlan, RunDriver, RunFailed, RunRefused, one_line, plan_resume
from geogui.rundir.runlog import RunLog, read_meta, read_metrics, read_run_records
from geogui.settings import Settings

from tests.conftest import tiny_settings


def drive(driver: RunDriver, stop_at: int | None = None, **meta) -> list:
    driver.prepare()
    driver.build_trainer()
    driver.open_log(**meta)
    events = []
    for event in driver.run():
        events.append(event)
        if isinstance(event, BatchRecord) and event.step == stop_at:
            driver.trainer.stop()
    return events


def stopped_run(tmp_path, steps: int = 20, stop_at: int = 8):
    out = tmp_path / "run"
    drive(RunDriver.new(tiny_settings(steps=steps, checkpoint_interval=0), out), stop_at=stop_at)
    assert read_meta(out).status == "stopped"
    return out


def batch_steps(run_dir) -> list[int]:
    return [r["step"] for r in read_run_records(run_dir) if r["kind"] == "batch"]


def refused(call, reason: str) -> str:
    with pytest.raises(RunRefused) as caught:
        call()
    assert caught.value.reason == reason, caught.value
    return str(caught.value)


# -- a planned resume, refused with its reason --------------------------------------------------------
def test_a_run_without_a_description_cannot_be_planned(tmp_path):
    assert "meta.json: missing" in refused(lambda: plan_resume(tmp_path / "nowhere"), driver_module.UNREADABLE)
    (tmp_path / "torn").mkdir()
    (tmp_path / "torn" / "meta.json").write_text('{"half": ')
    assert "meta.json: unreadable" in refused(lambda: plan_resume(tmp_path / "torn"), driver_module.UNREADABLE)


def test_a_run_being_written_cannot_be_resumed(tmp_path):
    out = stopped_run(tmp_path)
    writing = RunLog.reopen(out, Settings.model_validate(read_meta(out).settings), 8)  # this process writes it
    try:
        message = refused(lambda: plan_resume(out), driver_module.RUNNING)
    finally:
        writing.close("stopped")
    assert message == f"{out}: the run is still being written by process {read_meta(out).pid}"


def test_a_finished_run_needs_more_steps(tmp_path):
    out = tmp_path / "run"
    drive(RunDriver.new(tiny_settings(steps=5), out))
    message = refused(lambda: plan_resume(out), driver_module.FINISHED)
    assert "finished all its 5 steps" in message and "already at step 5 of 5" in message
    plan = plan_resume(out, more_steps=3)  # asked for more: fine
    assert plan.run_dir == out and plan.more_steps == 3


def test_settings_that_no_longer_validate_are_refused_naming_meta_json(tmp_path):
    out = stopped_run(tmp_path)
    meta = json.loads((out / "meta.json").read_text(encoding="utf-8"))
    good = json.dumps(meta)
    meta["settings"]["run"]["batch_size"] = 0
    (out / "meta.json").write_text(json.dumps(meta))
    message = refused(lambda: plan_resume(out), driver_module.BAD_SETTINGS)
    assert message.startswith(f"{out / 'meta.json'}: run.batch_size")
    (out / "meta.json").write_text(good)
    # Learning rates lowered out of their bounds are refused the same way.
    assert "learning_rate" in refused(lambda: plan_resume(out, learning_rate_factor=0.0), driver_module.BAD_SETTINGS)
    lowered = plan_resume(out, learning_rate_factor=0.1).settings.run
    assert lowered.learning_rate == pytest.approx(tiny_settings().run.learning_rate * 0.1)
    assert lowered.rotation_learning_rate == pytest.approx(tiny_settings().run.rotation_learning_rate * 0.1)


def test_the_checkpoint_is_checked_before_the_run_directory_is_touched(tmp_path):
    out = stopped_run(tmp_path)
    before = (out / "metrics.jsonl").read_bytes(), (out / "meta.json").read_bytes()

    def prepare(**plan):
        return lambda: RunDriver.resuming(ResumePlan(out, **plan)).prepare()

    settings = plan_resume(out).settings
    bigger = Settings.model_validate({**settings.model_dump(), "model": {**settings.model.model_dump(), "d_model": 64}})
    assert "d_model 32 -> 64" in refused(prepare(settings=bigger), driver_module.BAD_CHECKPOINT)
    assert refused(prepare(settings=settings, more_steps=0), driver_module.AT_END) == f"{out}: already at step 8 of 8"
    assert "run.steps" in refused(prepare(settings=settings, more_steps=-100), driver_module.BAD_SETTINGS)
    (out / "checkpoints" / "latest.pt").write_bytes(b"\x00not a checkpoint")
    assert "not a readable checkpoint" in refused(prepare(settings=settings), driver_module.BAD_CHECKPOINT)
    for name in ("latest.pt", "previous.pt"):
        (out / "checkpoints" / name).unlink(missing_ok=True)
    assert refused(prepare(settings=settings), driver_module.NO_CHECKPOINT) == f"{out}: no checkpoint to resume from"
    assert ((out / "metrics.jsonl").read_bytes(), (out / "meta.json").read_bytes()) == before


def test_bad_data_a_size_that_cannot_fit_and_a_locked_run_are_refused(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    settings = tiny_settings()
    settings.data.path = empty
    assert refused(RunDriver.new(settings, tmp_path / "a").prepare, driver_module.BAD_DATA) == f"{empty}: file is empty"
    huge = Settings.model_validate({**tiny_settings().model_dump(), "run": {**tiny_settings().run.model_dump(),
                                                                            "batch_size": 4096},
                                    "model": {"seq_len": 16384, "d_model": 1024, "n_heads": 8}})
    assert "would not fit in memory" in refused(RunDriver.new(huge, tmp_path / "b").prepare, driver_module.TOO_BIG)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
    holder = RunLog(tmp_path / "held", tiny_settings())
    try:
        driver = RunDriver.new(tiny_settings(), tmp_path / "held")
        driver.prepare()
        assert "being written by another process" in refused(driver.open_log, driver_module.RUN_DIR)
    finally:
        holder.close("stopped")


# -- a run driven to completion -------------------------------------------------------------------
def test_a_run_driven_to_completion_writes_its_log(tmp_path):
    out = tmp_path / "run"
    driver = RunDriver.new(tiny_settings(steps=6), out)
    events = drive(driver, world_size=1, backend=None)
    assert isinstance(events[0], RunStarted) and events[-1] == RunFinished(6, "finished")
    assert not any(isinstance(e, RunFailed) for e in events) and driver.status == "finished"
    assert driver.path == out and batch_steps(out) == [1, 2, 3, 4, 5, 6]
    meta = read_meta(out)
    assert meta.status == "finished" and meta.steps_done == 6 and meta.ended_at
    assert meta.world_size == 1 and meta.backend is None  # the caller's fields
    assert (out / "checkpoints" / "latest.pt").is_file()


def test_a_resumed_run_continues_its_steps_and_replays_only_what_its_checkpoint_holds(tmp_path):
    out = stopped_run(tmp_path, steps=20, stop_at=8)
    with open(out / "metrics.jsonl", "a") as handle:  # as if it had crashed after logging step 9
        handle.write(json.dumps({**read_metrics(out)[-2], "step": 9}) + "\n")
    driver = RunDriver.resuming(plan_resume(out, more_steps=4))
    driver.prepare()
    assert driver.start_step == 8 and driver.settings.run.steps == 12
    assert [r.step for r in driver.earlier_records() if isinstance(r, BatchRecord)] == list(range(1, 9))
    driver.build_trainer()
    driver.open_log()
    events = list(driver.run())
    assert events[0].start_step == 8 and events[-1] == RunFinished(12, "finished")
    assert batch_steps(out) == list(range(1, 13)) and read_meta(out).status == "finished"


def test_a_consumer_that_stops_listening_leaves_a_stopped_run(tmp_path):
    out = tmp_path / "run"
    driver = RunDriver.new(tiny_settings(steps=100_000), out)
    driver.prepare()
    driver.build_trainer()
    driver.open_log()
    events = driver.run()
    for event in events:
        if isinstance(event, BatchRecord) and event.step == 3:
            break
    events.close()
    assert read_meta(out).status == "stopped" and batch_steps(out) == [1, 2, 3]


# -- a failure, as one line ------------------------------------------------------------------------
def test_a_failure_is_one_line_and_the_log_is_closed_as_failed(tmp_path, monkeypatch):
    original_run = trainer_module.Trainer.run

    def run_then_break(self):
        for event in original_run(self):
            yield event
            if isinstance(event, BatchRecord) and event.step == 3:
                raise RuntimeError("simulated\n   failure")

    monkeypatch.setattr(trainer_module.Trainer, "run", run_then_break)
    out = tmp_path / "run"
    driver = RunDriver.new(tiny_settings(), out)
    events = drive(driver)
    assert events[-1] == RunFailed(3, "RuntimeError: simulated failure", environment=False)
    assert sum(isinstance(e, RunFailed) for e in events) == 1 and driver.status == "failed"
    assert isinstance(driver.error, RuntimeError)  # for a caller that wants the traceback
    assert read_meta(out).status == "failed" and batch_steps(out) == [1, 2, 3]


def test_out_of_memory_says_what_was_kept_and_the_failure_can_be_recorded(tmp_path, monkeypatch):
    original, calls = MoETransformer.forward, []

    def runs_out_at_step_4(model, *args, **kwargs):
        calls.append(1)
        if len(calls) == 4:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return original(model, *args, **kwargs)

    monkeypatch.setattr(MoETransformer, "forward", runs_out_at_step_4)
    out = tmp_path / "run"
    driver = RunDriver.new(tiny_settings(eval_interval=1000), out)
    failure = drive(driver)[-1]
    assert isinstance(failure, RunFailed) and failure.environment and failure.step == 3
    assert failure.message.startswith("Out of memory at step 4 (CUDA out of memory. Tried to allocate 2.00 GiB)")
    assert read_meta(out).status == "failed"
    driver.record_failure("rank 1 (pid 12) died")  # what the torchrun path adds
    assert read_meta(out).status == "failed" and read_meta(out).error == "rank 1 (pid 12) died"


def test_one_line():
    assert one_line(RuntimeError("a\n  b")) == "RuntimeError: a b"
    assert one_line(KeyError()) == "KeyError"
    assert one_line(RunRefused("  the reason ", driver_module.RUN_DIR)) == "the reason"
