"""Steering a run the app did not start: while the app follows a run, its toolbar writes commands to the
run's control file, the plots mark a mode change once the trainer confirms it, and the status bar says
whether the trainer is alive, paused or stalled."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import pytest

from geogui import paths
from geogui.engine.control_file import CONTROL_FILE
from geogui.gui.main_window import MainWindow
from geogui.settings import Mode

from .conftest import synthetic_record, tiny_settings

TIMEOUT_MS = 60_000


def commands(run_dir) -> list[dict]:
    path = run_dir / CONTROL_FILE
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def records(run_dir) -> list[dict]:
    try:
        text = (run_dir / "metrics.jsonl").read_text()
    except FileNotFoundError:
        return []
    return [json.loads(line) for line in text.splitlines(keepends=True) if line.endswith("\n")]


@pytest.mark.slow
def test_the_toolbar_steers_a_followed_geogui_train_process(qtbot, window, tmp_path):
    settings_file = tmp_path / "settings.json"
    settings_file.write_text(json.dumps({
        "run": {"batch_size": 2, "eval_interval": 1000, "checkpoint_interval": 0, "steps": 100_000,
                "mode": "standard"},
        "model": {"d_model": 16, "n_layers": 1, "n_heads": 2, "seq_len": 16, "expert_hidden": 16},
        "device": {"device": "cpu"}}))
    out = paths.runs_dir() / "remote"
    process = subprocess.Popen([sys.executable, "-m", "geogui.cli.train", "--settings", str(settings_file), "--out",
                                str(out), "--quiet"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        qtbot.waitUntil(lambda: any(r["kind"] == "batch" for r in records(out)), timeout=120_000)
        assert window.open_run(out) and window.following
        assert window.status.follow_state.text() == "following · alive"
        assert window.toolbar.pause_action.isEnabled() and window.toolbar.stop_action.isEnabled()

        window.toolbar.mode_actions[Mode.GEOMETRIC].trigger()
        assert commands(out)[-1]["command"] == "mode" and commands(out)[-1]["mode"] == "geometric"
        assert commands(out)[-1]["sender"].startswith("geogui@")
        # The marker appears once the trainer has applied the switch and logged it, not at the click.
        qtbot.waitUntil(lambda: len(window.plots.series.mode_changes) > 0, timeout=TIMEOUT_MS)
        change = next(r for r in records(out) if r["kind"] == "mode_change")
        assert change["mode"] == "geometric" and window.plots.series.mode_changes[-1].step == change["step"]

        window.toolbar.pause_action.trigger()
        qtbot.waitUntil(lambda: window.toolbar.pause_action.text() == "Resume", timeout=TIMEOUT_MS)
        assert window.status.follow_state.text() == "following · paused"
        assert any(r.get("event") == "paused" for r in records(out))
        window.toolbar.pause_action.trigger()
        qtbot.waitUntil(lambda: window.toolbar.pause_action.text() == "Pause", timeout=TIMEOUT_MS)

        window.toolbar.penalty_edit.setText("0.25")
        window.run_actions.penalty_entered.emit("0.25")
        qtbot.waitUntil(lambda: any(r["kind"] == "mode_change" and r["penalty_weight"] == 0.25
                                    for r in records(out)), timeout=TIMEOUT_MS)

        window.toolbar.stop_action.trigger()
        qtbot.waitUntil(lambda: not window.following, timeout=TIMEOUT_MS)
        assert process.wait(timeout=60) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)
    assert window.status.run_state.text() == "remote: stopped"
    assert not window.status.follow_state.isVisible()
    assert [c["command"] for c in commands(out)] == ["mode", "pause", "resume", "penalty_weight", "stop"]


def live_run_dir(name: str):
    """A run directory that this (live) process pretends to write, with one batch record."""
    run = paths.runs_dir() / name
    run.mkdir(parents=True)
    meta = {"name": name, "status": "running", "pid": os.getpid(), "host": socket.gethostname(),
            "settings": json.loads(tiny_settings().model_dump_json()), "started_at": "2026-01-01T00:00:00+00:00"}
    (run / "meta.json").write_text(json.dumps(meta))
    (run / "metrics.jsonl").write_text(json.dumps(synthetic_record(1).to_json()) + "\n")
    return run


def test_a_followed_run_without_new_records_shows_stalled_until_one_arrives(qtbot, tmp_path):
    window = MainWindow(tiny_settings(), persist=False, follow_ms=20, stall_after_s=30)
    qtbot.addWidget(window)
    run = live_run_dir("quiet")
    an_hour_ago = time.time() - 3600
    os.utime(run / "metrics.jsonl", (an_hour_ago, an_hour_ago))
    assert window.open_run(run) and window.following
    assert window.status.follow_state.text().startswith("following · stalled (1:00:")
    with open(run / "metrics.jsonl", "a") as handle:
        handle.write(json.dumps(synthetic_record(2).to_json()) + "\n")
    qtbot.waitUntil(lambda: window.status.follow_state.text() == "following · alive", timeout=TIMEOUT_MS)


def test_a_bad_penalty_weight_is_refused_before_anything_is_written(qtbot, tmp_path):
    window = MainWindow(tiny_settings(), persist=False, follow_ms=20)
    qtbot.addWidget(window)
    run = live_run_dir("steered")
    assert window.open_run(run)
    window.run_actions.penalty_entered.emit("-1")
    assert "greater than or equal to 0" in window.toolbar.penalty_edit.toolTip()
    window.run_actions.penalty_entered.emit("many")
    assert not (run / CONTROL_FILE).exists()
    window.run_actions.penalty_entered.emit("0.5")
    assert commands(run)[-1]["penalty_weight"] == 0.5
    # Not following any more: the toolbar goes back to driving the app's own runs only.
    meta = json.loads((run / "meta.json").read_text())
    meta["status"] = "finished"
    (run / "meta.json").write_text(json.dumps(meta))
    qtbot.waitUntil(lambda: not window.following, timeout=TIMEOUT_MS)
    assert not window.toolbar.pause_action.isEnabled()


def test_a_followed_run_shows_one_state_at_a_time_and_start_is_off_saying_why(qtbot, tmp_path):
    window = MainWindow(tiny_settings(), persist=False, follow_ms=20)
    qtbot.addWidget(window)
    run = live_run_dir("from-terminal")
    assert window.toolbar.start_action.isEnabled()
    assert window.open_run(run) and window.following
    status = window.status
    # The trainer's state (alive, paused, stalled) says it; not also the file's "running" beside it.
    assert status.run_state.text() == "from-terminal" and status.follow_state.text() == "following · alive"
    window.controller._set_paused(True)  # as when the trainer confirms a pause
    qtbot.waitUntil(lambda: status.follow_state.text() == "following · paused", timeout=TIMEOUT_MS)
    assert "running" not in status.run_state.text()
    # Start would quietly stop following and train a second run on the same machine.
    assert not window.toolbar.start_action.isEnabled()
    assert "another process trains" in window.toolbar.start_action.toolTip()
    meta = json.loads((run / "meta.json").read_text())
    meta["status"] = "finished"
    (run / "meta.json").write_text(json.dumps(meta))
    qtbot.waitUntil(lambda: not window.following, timeout=TIMEOUT_MS)
    assert status.run_state.text() == "from-terminal: finished" and not status.follow_state.isVisible()
    assert window.toolbar.start_action.isEnabled()
    assert window.toolbar.start_action.toolTip().startswith("Start a new run")
