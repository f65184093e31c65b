"""meta.json, typed: what the RunLog writes, what a reader tolerates, the statuses it derives, and
the record kinds the log and meta.json share."""

from __future__ import annotations

import json
import os
import shutil
import socket
from pathlib import Path

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
from geogui.engine.trainer import Trainer
from geogui.rundir.layout import RunLogError
from geogui.rundir.meta import RunMeta, RunStatus, parse_meta, read_meta, write_meta
from geogui.rundir.recorder import record_run
from geogui.rundir.runlog import RunLog

from tests.conftest import tiny_settings

FIXTURE = Path(__file__).parent / "fixtures" / "run_written_by_0_1_0"


def fixture_json() -> dict:
    return json.loads((FIXTURE / "meta.json").read_text(encoding="utf-8"))


def test_the_log_writes_the_keys_0_1_0_wrote(tmp_path):
    settings = tiny_settings(steps=3, mode="standard", eval_interval=2, checkpoint_interval=1)
    trainer = Trainer(settings)
    for event in record_run(trainer, RunLog(tmp_path / "run", settings)):
        if isinstance(event, BatchRecord) and event.step == 1:
            trainer.request_mode("geometric_fast")
    written = json.loads((tmp_path / "run" / "meta.json").read_text(encoding="utf-8"))
    # every key 0.1.0 wrote, and since then only the run's first held-out question (the Samples tab's prompt)
    assert set(written) - set(fixture_json()) == {"heldout_prompt", "heldout_answer"}
    assert set(fixture_json()) <= set(written)
    assert written["status"] == "finished" and written["steps_done"] == 3 and written["resumes"] == []
    assert written["mode_changes"] == [ModeChange(2, "geometric_fast", 0.001, "standard", 0.001).to_json()]
    assert written["settings"] == json.loads(settings.model_dump_json())


def test_a_continuation_is_listed_and_rewinds_the_log(tmp_path):
    shutil.copytree(FIXTURE, tmp_path / "run")
    settings = read_meta(tmp_path / "run").settings_model()
    RunLog.reopen(tmp_path / "run", settings, 2).close(RunStatus.STOPPED)
    meta = read_meta(tmp_path / "run")
    assert [c.from_step for c in meta.continuations] == [1, 2] and meta.status is RunStatus.STOPPED
    assert json.loads((tmp_path / "run" / "meta.json").read_text())["resumes"][1]["from_step"] == 2
    last = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[-1]
    assert json.loads(last) == {"kind": "resumed", "step": 2} == Rewind(2).to_json()


def test_what_a_reader_tolerates_and_keeps(tmp_path):
    data = fixture_json()
    data.update(status="paused-in-the-future", steps_done="three", later_version={"kept": True},
                events=[*data["events"], {"kind": "event", "step": "x"}, {"kind": "eval"}],
                resumes=[{"from_step": None}, {"from_step": 1}])
    meta = parse_meta(data, tmp_path / "meta.json")
    assert meta.status is RunStatus.CRASHED and meta.steps_done == 0  # the defaults of values not understood
    assert [e.event for e in meta.events] == [EventKind.PAUSED, EventKind.UNPAUSED, EventKind.CHECKPOINT_LOADED]
    assert [c.from_step for c in meta.continuations] == [1]
    write_meta(tmp_path, meta)
    again = json.loads((tmp_path / "meta.json").read_text())
    assert again["later_version"] == {"kept": True} and "status" not in again and "steps_done" not in again
    minimal = parse_meta({"settings": {}}, tmp_path / "meta.json")
    assert minimal.modes == () and minimal.planned_steps is None and minimal.to_json() == {"settings": {}}
    with pytest.raises(ValueError):
        minimal.model_settings()


@pytest.mark.parametrize("text, problem", [
    (None, "meta.json: missing"), ("{not json", "meta.json: unreadable"), ("[1, 2]", "not a geogui run description"),
    ('{"name": "x"}', "not a geogui run description"), ('{"settings": [1]}', "not a geogui run description")])
def test_a_meta_json_that_cannot_be_read_is_one_clear_line(tmp_path, text, problem):
    if text is not None:
        (tmp_path / "meta.json").write_text(text)
    with pytest.raises(RunLogError, match=problem) as caught:
        read_meta(tmp_path)
    assert str(caught.value).startswith(str(tmp_path / "meta.json")) and "\n" not in str(caught.value)


def test_the_status_a_reader_derives(tmp_path):
    meta = parse_meta(fixture_json(), tmp_path)
    here = dict(host=socket.gethostname(), status=RunStatus.RUNNING)
    assert meta.model_copy(update=dict(here, pid=2**22 + 12345, writer=None)).effective_status() is RunStatus.CRASHED
    assert meta.model_copy(update=dict(here, pid=os.getpid(), writer=None)).effective_status() is RunStatus.RUNNING
    assert meta.model_copy(update=dict(here, host="elsewhere")).effective_status() is RunStatus.RUNNING
    log = RunLog(tmp_path / "live", tiny_settings())
    assert read_meta(log.path).effective_status() is RunStatus.RUNNING  # this process's open log
    log.close("stopped")
    stale = read_meta(log.path).model_copy(update={"status": RunStatus.RUNNING})
    assert stale.effective_status() is RunStatus.CRASHED  # its pid lives, but its log is closed
    assert [s for s in RunStatus if s.continuable] == [RunStatus.STOPPED, RunStatus.FAILED, RunStatus.CRASHED]
    assert RunStatus.FINISHED == "finished" and f"{RunStatus.CRASHED}" == "crashed"


def test_every_record_says_its_kind_as_its_line_does():
    records = [EvalRecord(2, 1.5, 4.5), ModeChange(3, "geometric", 0.01, "standard", 0.001),
               RunEvent(4, EventKind.NONFINITE_LOSS, "loss is nan"), Rewind(2), RunFinished(5, "stopped")]
    for record in records:
        line = json.loads(json.dumps(record.to_json()))
        assert line["kind"] == record.kind and isinstance(record.kind, RecordKind)
        assert record_from_json(line) == record
    assert RunEvent(1, "paused", "").event is EventKind.PAUSED  # a string of a known kind becomes the enum
    unknown = RunEvent(1, "from_a_later_version", "m")
    assert unknown.event == "from_a_later_version" and record_from_json(unknown.to_json()) == unknown
    # The strings on disk are the ones every version wrote (and "resumed" is two of them).
    assert (RecordKind.REWIND, EventKind.UNPAUSED, EventKind.CHECKPOINT_LOADED) == (
        "resumed", "resumed", "resumed_from_checkpoint")
    assert RunMeta(settings={}).status is RunStatus.CRASHED
