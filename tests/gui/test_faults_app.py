"""Fault suite, in the real window: a diverging run, out of memory, a full disk, the window closed
mid-checkpoint, the app process killed with SIGKILL. The app stays up, says what happened, and loses
nothing beyond what was being written."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest
import torch

from geogui import paths
from geogui.engine import checkpoint as checkpoint_module
from geogui.engine import trainer as trainer_module
from geogui.engine.checkpoint import latest_checkpoint, read_checkpoint_step
from geogui.engine.model import MoETransformer
from geogui.rundir.runlog import effective_status, read_meta, read_metrics
from geogui.gui.main_window import MainWindow

from ..fault_injection import FullDisk
from .conftest import TINY, only_run_dir, tiny_settings

TIMEOUT_MS = 60_000


@pytest.fixture
def window(qtbot):
    window = MainWindow(tiny_settings(steps=100_000, checkpoint_interval=2), persist=False)
    qtbot.addWidget(window)
    window.show()
    return window


def batch_steps(run_dir) -> list[int]:
    return [r["step"] for r in read_metrics(run_dir) if r["kind"] == "batch"]


def test_a_diverging_run_pauses_alerts_and_resumes_from_the_good_checkpoint_with_a_lower_rate(qtbot, window):
    assert window.start_run()
    qtbot.waitUntil(lambda: len(window.plots.series) >= 3, timeout=TIMEOUT_MS)
    trainer = window.session.worker._trainer
    # A learning rate far past the settings' bound, from the next batch on: the weights blow up.
    run = trainer.settings.run.model_copy(update={"learning_rate": 1e30, "rotation_learning_rate": 1e30})
    trainer.settings = trainer.settings.model_copy(update={"run": run})
    qtbot.waitUntil(lambda: window.nonfinite_alert is not None and window.nonfinite_alert.isVisible(),
                    timeout=TIMEOUT_MS)
    alert = window.nonfinite_alert
    run_dir = only_run_dir()
    report = [e for e in read_meta(run_dir).events if e.event == "nonfinite_loss"][0]
    kept = [e for e in read_meta(run_dir).events if e.event == "good_checkpoint"][0].step
    assert alert.text() == f"Training paused at step {report.step}: the loss went non-finite."
    assert report.message in alert.informativeText()
    assert f"The last good checkpoint (step {kept}) is kept." in alert.informativeText()
    assert 0 < kept < report.step and read_checkpoint_step(latest_checkpoint(run_dir)) == kept
    assert window.controller.paused and window.toolbar.pause_action.text().startswith("Resume")
    lower = tiny_settings().run.learning_rate * 0.1
    assert alert.lower_button.text() == f"Resume from step {kept} with learning rate {lower:g}"

    alert.lower_button.click()
    qtbot.waitUntil(lambda: window.session is not None and len(window.plots.series) >= kept + 3,
                    timeout=TIMEOUT_MS)
    assert window.panel.settings().run.learning_rate == pytest.approx(lower)
    assert read_meta(run_dir).settings["run"]["learning_rate"] == pytest.approx(lower)
    assert window.plots.series.step.view()[: kept + 1].tolist() == list(range(1, kept + 2))
    with qtbot.waitSignal(window.session.ended, timeout=TIMEOUT_MS):
        window.stop_run()
    assert batch_steps(run_dir)[-1] > kept and read_meta(run_dir).status == "stopped"


def test_out_of_memory_mid_step_is_a_dialog_and_the_app_stays_up(qtbot, window, monkeypatch):
    original, calls = MoETransformer.forward, []

    def runs_out_at_step_6(model, *args, **kwargs):
        calls.append(1)
        if len(calls) == 6:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return original(model, *args, **kwargs)

    monkeypatch.setattr(MoETransformer, "forward", runs_out_at_step_6)
    assert window.start_run()
    qtbot.waitUntil(lambda: window.session is None, timeout=TIMEOUT_MS)
    assert window.error_box.isVisible()
    assert window.error_box.text().startswith("Out of memory at step 6 (CUDA out of memory.")
    run_dir = only_run_dir()
    assert batch_steps(run_dir) == [1, 2, 3, 4, 5]  # flushed to the last finished step
    assert read_meta(run_dir).status == "failed"
    assert len(window.plots.series) == 5 and window.toolbar.start_action.isEnabled()


def test_a_full_disk_is_a_dialog_and_what_was_written_stays(qtbot, window, monkeypatch):
    FullDisk(monkeypatch, after_step=5)
    assert window.start_run()
    qtbot.waitUntil(lambda: window.session is None, timeout=TIMEOUT_MS)
    run_dir = only_run_dir()
    assert window.error_box.text().startswith(f"Disk full while writing {run_dir / 'metrics.jsonl'} after step 5.")
    assert batch_steps(run_dir) == [1, 2, 3, 4, 5]
    assert read_checkpoint_step(latest_checkpoint(run_dir)) == 4
    # The status could not be written: the run is not shown as running, although this process lives.
    assert effective_status(read_meta(run_dir)) == "crashed"
    assert window.toolbar.start_action.isEnabled()


def test_closing_the_window_mid_checkpoint_leaves_a_whole_checkpoint_and_a_stopped_run(qtbot, window,
                                                                                    monkeypatch):
    original_save, original_stop = checkpoint_module.torch.save, trainer_module.Trainer.stop
    writing, stop_asked = threading.Event(), threading.Event()

    def stop(trainer):
        original_stop(trainer)
        stop_asked.set()

    def slow_save(payload, handle):  # the second checkpoint is being written when the window closes
        if payload["step"] == 4:
            writing.set()
            assert stop_asked.wait(30)
        original_save(payload, handle)

    monkeypatch.setattr(trainer_module.Trainer, "stop", stop)
    monkeypatch.setattr(checkpoint_module.torch, "save", slow_save)
    assert window.start_run()
    qtbot.waitUntil(writing.is_set, timeout=TIMEOUT_MS)
    thread = window.session.worker_thread
    window.close()
    assert not thread.isRunning() and window.session is None
    run_dir = only_run_dir()
    assert read_meta(run_dir).status == "stopped"
    payload = torch.load(latest_checkpoint(run_dir), weights_only=True)
    assert payload["step"] >= 4 and payload["step"] == batch_steps(run_dir)[-1]
    assert not list(run_dir.rglob("*.tmp"))


def test_kill_9_of_the_app_mid_run_shows_crashed_next_launch_and_resumes(qtbot, tmp_path):
    settings_file = tmp_path / "tiny.json"
    settings_file.write_text(json.dumps({**TINY, "run": {**TINY["run"], "checkpoint_interval": 5}}))
    app = subprocess.Popen(
        [sys.executable, "-m", "geogui", "--settings", str(settings_file), "--run-steps", "100000",
         "--screenshot", str(tmp_path / "never.png")],
        env={**os.environ, "QT_QPA_PLATFORM": "offscreen"}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and app.poll() is None:  # another process's files: poll them
            runs = list(paths.runs_dir().iterdir())
            if runs and latest_checkpoint(runs[0]) and len(batch_steps(runs[0])) >= 12:
                break
            time.sleep(0.05)
        assert app.poll() is None, "the app exited before it was killed"
    finally:
        app.send_signal(signal.SIGKILL)
        app.wait(30)
    run_dir = only_run_dir()
    steps = batch_steps(run_dir)
    assert steps == list(range(1, len(steps) + 1)) and len(steps) >= 12  # every flushed line parses

    window = MainWindow(tiny_settings(), persist=False)  # the next launch
    qtbot.addWidget(window)
    assert window.runs_panel.info(run_dir).status == "crashed"
    checkpoint = read_checkpoint_step(latest_checkpoint(run_dir))
    assert window.resume_run(run_dir)
    qtbot.waitUntil(lambda: len(window.plots.series) >= checkpoint + 3, timeout=TIMEOUT_MS)
    with qtbot.waitSignal(window.session.ended, timeout=TIMEOUT_MS):
        window.stop_run()
    resumed = [r["step"] for r in read_metrics(run_dir) if r["kind"] == "batch"]
    assert resumed[len(steps):][0] == checkpoint + 1  # continued from the checkpoint, numbers following on
    assert read_meta(run_dir).status == "stopped"
