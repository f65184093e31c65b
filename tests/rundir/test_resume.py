import json
import signal
import subprocess
import sys
import time

import pytest
import torch

from geogui.cli.train import main
from geogui.engine.checkpoint import CheckpointError, latest_checkpoint, load_checkpoint, read_checkpoint_step
from geogui.engine.metrics import BatchRecord
from geogui.rundir.meta import RunStatus, read_meta, write_meta
from geogui.rundir.reader import read_lines
from geogui.rundir.recorder import record_run
from geogui.rundir.runlog import RunLog
from geogui.engine.trainer import Trainer, build_state
from geogui.settings import ModelSettings

from tests.conftest import tiny_settings


def test_resume_after_step_k_matches_the_uninterrupted_run(tmp_path):
    settings = tiny_settings(steps=20, mode="geometric_fast", checkpoint_interval=0)
    uninterrupted = {e.step: e.loss for e in Trainer(settings).run() if isinstance(e, BatchRecord)}

    first = Trainer(settings)
    log = RunLog(tmp_path / "run", settings)
    for event in record_run(first, log):
        if isinstance(event, BatchRecord) and event.step == 8:
            first.stop()
    assert read_meta(tmp_path / "run").status is RunStatus.STOPPED
    checkpoint = latest_checkpoint(tmp_path / "run")
    assert read_checkpoint_step(checkpoint) == 8

    resumed = Trainer(settings, resume_from=checkpoint)
    continued = {e.step: e.loss for e in record_run(resumed, RunLog.reopen(tmp_path / "run", settings, 8))
                 if isinstance(e, BatchRecord)}
    assert min(continued) == 9
    for step in range(9, 19):
        assert continued[step] == pytest.approx(uninterrupted[step], rel=1e-5, abs=1e-6), step
    records = [r for r in read_lines(tmp_path / "run").lines if r["kind"] == "batch"]
    assert [r["step"] for r in records] == list(range(1, 21))
    assert read_meta(tmp_path / "run").status is RunStatus.FINISHED


def test_resume_across_a_mode_switch_keeps_the_mode(tmp_path):
    settings = tiny_settings(steps=12, mode="standard", checkpoint_interval=5)
    trainer = Trainer(settings)
    for event in record_run(trainer, RunLog(tmp_path / "run", settings)):
        if isinstance(event, BatchRecord) and event.step == 3:
            trainer.request_mode("geometric")
        if isinstance(event, BatchRecord) and event.step == 6:
            trainer.stop()
    state = build_state(settings, torch.device("cpu"))
    load_checkpoint(latest_checkpoint(tmp_path / "run"), state, settings.model)
    assert state.step == 6 and state.mode.value == "geometric" and state.tokens_seen == 6 * 4 * 32


def test_incompatible_checkpoint_is_refused_with_the_reason(tmp_path):
    settings = tiny_settings(steps=2)
    for _ in record_run(Trainer(settings), RunLog(tmp_path / "run", settings)):
        pass
    bigger = ModelSettings(**{**settings.model.model_dump(), "d_model": 64})
    state = build_state(settings.model_copy(update={"model": bigger}), torch.device("cpu"))
    with pytest.raises(CheckpointError, match="d_model 32 -> 64"):
        load_checkpoint(latest_checkpoint(tmp_path / "run"), state, bigger)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"\x00not a checkpoint")
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load_checkpoint(garbage, state, bigger)


def test_checkpoints_are_written_atomically(tmp_path, monkeypatch):
    settings = tiny_settings(steps=4, checkpoint_interval=2)
    for _ in record_run(Trainer(settings), RunLog(tmp_path / "run", settings)):
        pass
    good = latest_checkpoint(tmp_path / "run")
    before = good.read_bytes()

    def crash_mid_write(obj, handle, *args, **kwargs):
        handle.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", crash_mid_write)
    from geogui.engine.checkpoint import save_checkpoint

    state = build_state(settings, torch.device("cpu"))
    with pytest.raises(OSError):
        save_checkpoint(tmp_path / "run", state, settings.model)
    assert good.read_bytes() == before  # the latest checkpoint is untouched


def _write_settings(tmp_path, steps):
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({
        "run": {"batch_size": 2, "eval_interval": 1000, "checkpoint_interval": 5, "steps": steps},
        "model": {"d_model": 16, "n_layers": 1, "n_heads": 2, "seq_len": 16, "expert_hidden": 16},
        "device": {"device": "cpu"}}))
    return path


def test_kill_minus_9_leaves_parseable_metrics_a_crashed_status_and_a_resumable_run(tmp_path):
    out = tmp_path / "run"
    process = subprocess.Popen(
        [sys.executable, "-m", "geogui.cli.train", "--settings", str(_write_settings(tmp_path, 100000)),
         "--out", str(out), "--quiet"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and process.poll() is None:  # until it has logged a little
            if latest_checkpoint(out) and sum(1 for _ in open(out / "metrics.jsonl")) >= 12:
                break
            time.sleep(0.05)  # polling another process's files; nothing to wait on
        assert latest_checkpoint(out) is not None
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    records = read_lines(out, rewind=False).lines
    lines = (out / "metrics.jsonl").read_text().splitlines()
    assert len(records) >= len(lines) - 1  # at most the torn last line is lost
    steps = [r["step"] for r in records if r["kind"] == "batch"]
    assert steps == list(range(1, len(steps) + 1)) and len(steps) >= 10
    meta = read_meta(out)
    assert meta.status is RunStatus.RUNNING and meta.effective_status() is RunStatus.CRASHED

    checkpoint_step = read_checkpoint_step(latest_checkpoint(out))
    assert main(["--resume", str(out), "--steps", "3", "--quiet"]) == 0
    records = [r for r in read_lines(out).lines if r["kind"] == "batch"]
    assert [r["step"] for r in records] == list(range(1, checkpoint_step + 4))
    assert read_meta(out).status is RunStatus.FINISHED
    assert read_meta(out).effective_status() is RunStatus.FINISHED


def test_resume_refuses_a_live_run_and_conflicting_flags(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["--settings", str(_write_settings(tmp_path, 5)), "--out", str(out), "--quiet"]) == 0
    assert main(["--resume", str(out), "--quiet"]) == 2
    assert "already at step 5 of 5" in capsys.readouterr().err
    assert main(["--resume", str(out), "--steps", "2", "--mode", "standard"]) == 2
    assert "--mode cannot be combined with --resume" in capsys.readouterr().err
    writing = RunLog.reopen(out, read_meta(out).settings_model(), 5)  # this process writes it
    assert main(["--resume", str(out), "--steps", "2"]) == 2
    assert "still being written" in capsys.readouterr().err
    writing.close("stopped")
    assert main(["--resume", str(tmp_path / "nowhere"), "--steps", "2"]) == 2
    assert "meta.json: missing" in capsys.readouterr().err


def test_incompatible_checkpoint_is_refused_before_the_run_is_touched(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["--settings", str(_write_settings(tmp_path, 5)), "--out", str(out), "--quiet"]) == 0
    meta = read_meta(out)
    meta.settings["model"]["d_model"] = 32  # as if the run's description no longer matched its weights
    write_meta(out, meta)
    metrics_before = (out / "metrics.jsonl").read_bytes()
    assert main(["--resume", str(out), "--steps", "2", "--quiet"]) == 2
    assert "d_model 16 -> 32" in capsys.readouterr().err
    assert (out / "metrics.jsonl").read_bytes() == metrics_before
    assert read_meta(out).status is RunStatus.FINISHED
