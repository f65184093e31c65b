"""The control file: geogui-control validates and appends; the trainer applies each command between
batches as the app's buttons would, and logs every bad line with its reason without stopping."""

from __future__ import annotations

import json
import os

import pytest

from geogui.cli.control import main as control_main
from geogui.engine.control_file import (
    CONTROL_FILE,
    ControlError,
    ControlFileReader,
    Pause,
    Rejected,
    SetMode,
    SetPenaltyWeight,
    append_command,
    parse_command,
)
from geogui.engine.metrics import BatchRecord, ModeChange, RunEvent, RunFinished
from geogui.rundir.recorder import record_run
from geogui.rundir.runlog import RunLog, read_meta, read_run_records, write_json_atomic
from geogui.engine.trainer import Trainer
from geogui.settings import Mode

from tests.conftest import tiny_settings


@pytest.mark.parametrize("line, reason", [
    ('{"command": "explode"}', "unknown command 'explode'"),
    ('{"command": "mode", "mode": "fastest"}', "Input should be 'standard', 'geometric' or 'geometric_fast'"),
    ('{"command": "penalty_weight", "penalty_weight": 1000}', "less than or equal to 100"),
    ('{"command": "penalty_weight", "penalty_weight": -1}', "greater than or equal to 0"),
    ('{"command": "pause", "now": true}', "now: unknown field"),
    ('{"command": "mode"', "not JSON"),
    ('["pause"]', "not a JSON object"),
])
def test_bad_commands_are_refused_with_the_reason(line, reason):
    with pytest.raises(ControlError, match=reason.replace("(", r"\(")):
        parse_command(line)


def test_good_commands_parse():
    assert parse_command('{"command": "mode", "mode": "geometric"}') == SetMode(mode=Mode.GEOMETRIC)
    assert parse_command('{"command": "penalty_weight", "penalty_weight": 0.5}').penalty_weight == 0.5
    assert parse_command('{"command": "pause", "sent_at": "2026-01-01T00:00:00+00:00"}').command == "pause"


def test_reader_reads_complete_new_lines_only(tmp_path):
    append_command(tmp_path, Pause())  # written before the reader exists: never replayed
    reader = ControlFileReader(tmp_path)
    assert reader.poll() == []
    append_command(tmp_path, SetPenaltyWeight(penalty_weight=0.25))
    with open(tmp_path / CONTROL_FILE, "a", encoding="utf-8") as handle:
        handle.write('{"command": "nope"}\n{"command": "sto')  # a bad line, then one still being written
    first = reader.poll()
    assert first[0] == SetPenaltyWeight(penalty_weight=0.25, sent_at=first[0].sent_at, sender=first[0].sender)
    assert isinstance(first[1], Rejected) and first[1].line == 3 and "unknown command 'nope'" in first[1].reason
    assert len(first) == 2
    with open(tmp_path / CONTROL_FILE, "a", encoding="utf-8") as handle:
        handle.write('p"}\n')
    assert [c.command for c in reader.poll()] == ["stop"]


def running_run(tmp_path, **run):
    settings = tiny_settings(**run)
    return settings, RunLog(tmp_path / "run", settings)


def test_geogui_control_appends_one_validated_command(tmp_path, capsys):
    _, log = running_run(tmp_path)
    assert control_main([str(log.path), "--mode", "geometric"]) == 0
    assert control_main([str(log.path), "--penalty-weight", "0.01"]) == 0
    lines = (log.path / CONTROL_FILE).read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["command"] for line in lines] == ["mode", "penalty_weight"]
    assert json.loads(lines[0])["mode"] == "geometric" and json.loads(lines[0])["sender"].startswith("geogui-control@")
    assert "the trainer applies it between two batches" in capsys.readouterr().out

    assert control_main([str(log.path), "--penalty-weight", "-3"]) == 2
    assert "penalty_weight: Input should be greater than or equal to 0" in capsys.readouterr().err
    assert control_main([str(log.path), "--penalty-weight", "nan"]) == 2
    assert len((log.path / CONTROL_FILE).read_text(encoding="utf-8").splitlines()) == 2  # nothing bad written
    with pytest.raises(SystemExit):
        control_main([str(log.path), "--mode", "fastest"])


def test_geogui_control_refuses_a_run_nothing_reads(tmp_path, capsys):
    assert control_main([str(tmp_path), "--stop"]) == 2
    assert "meta.json: missing" in capsys.readouterr().err
    _, log = running_run(tmp_path)
    log.close("finished")
    assert control_main([str(log.path), "--stop"]) == 2
    assert "the run is finished; nothing reads its commands" in capsys.readouterr().err
    meta = read_meta(log.path)
    meta.status, meta.pid = "running", 2**22 + 12345  # a process that is gone: crashed
    write_json_atomic(log.path / "meta.json", meta)
    assert control_main([str(log.path), "--pause"]) == 2
    assert not (log.path / CONTROL_FILE).exists()


def test_trainer_applies_file_commands_between_batches_like_clicks(tmp_path):
    settings, log = running_run(tmp_path, steps=50, mode="standard", checkpoint_interval=0)
    trainer = Trainer(settings, commands=ControlFileReader(log.path))
    events = []
    for event in record_run(trainer, log):
        events.append(event)
        if isinstance(event, BatchRecord) and event.step == 2:
            append_command(log.path, SetMode(mode=Mode.GEOMETRIC_FAST))
            with open(log.path / CONTROL_FILE, "a", encoding="utf-8") as handle:
                handle.write('{"command": "rewind"}\n')
        if isinstance(event, BatchRecord) and event.step == 4:
            append_command(log.path, Pause())
        if isinstance(event, RunEvent) and event.event == "paused":
            # The trainer is now waiting; it must find this within its poll interval and go on.
            append_command(log.path, SetPenaltyWeight(penalty_weight=0.5))
            append_command(log.path, parse_command('{"command": "resume"}'))
        if isinstance(event, BatchRecord) and event.step == 7:
            control_main([str(log.path), "--stop"])

    changes = [e for e in events if isinstance(e, ModeChange)]
    assert [(c.step, c.mode, c.penalty_weight) for c in changes] == [
        (3, "geometric_fast", settings.run.penalty_weight), (5, "geometric_fast", 0.5)]
    kinds = [(e.event, e.step) for e in events if isinstance(e, RunEvent)]
    assert ("control_rejected", 2) in kinds and ("paused", 4) in kinds and ("resumed", 4) in kinds
    rejected = next(e for e in events if isinstance(e, RunEvent) and e.event == "control_rejected")
    assert "line 2: unknown command 'rewind'" in rejected.message
    assert events[-1] == RunFinished(7, "stopped")

    # The run directory says the same: the same kinds of records as a click in the app.
    records = read_run_records(log.path)
    assert [r["mode"] for r in records if r["kind"] == "batch"] == ["standard"] * 2 + ["geometric_fast"] * 5
    assert [r["kind"] for r in records].count("mode_change") == 2
    meta = read_meta(log.path)
    assert meta.status == "stopped" and len(meta.mode_changes) == 2
    assert any(e.event == "control_rejected" for e in meta.events)


def test_commands_reach_a_single_process_geogui_train(tmp_path):
    """The CLI reads the control file of the run it writes (pid check: the run is this process)."""
    import threading

    from geogui.cli.train import main

    out = tmp_path / "cli-run"
    settings_file = tmp_path / "tiny.json"
    settings_file.write_text(tiny_settings().model_dump_json())
    done = threading.Event()
    sent: list[int] = []

    def steer():
        # Wait for the run to be written, then stop it through the control file.
        while not done.is_set():
            try:
                records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines() if line]
            except (FileNotFoundError, json.JSONDecodeError):
                records = []
            if any(r["kind"] == "batch" for r in records):
                sent.append(control_main([str(out), "--stop"]))
                return
            done.wait(0.02)

    thread = threading.Thread(target=steer)
    thread.start()
    try:
        assert main(["--settings", str(settings_file), "--steps", "3000", "--out", str(out), "--quiet"]) == 0
    finally:
        done.set()
        thread.join()
    assert sent == [0]
    meta = read_meta(out)
    assert meta.status == "stopped" and meta.world_size == 1 and meta.backend is None
    assert meta.steps_done < 3000
    assert os.path.exists(out / CONTROL_FILE)
