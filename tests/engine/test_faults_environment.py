"""Fault suite, headless: out of memory mid-step, a full disk, a run directory that cannot be written,
a diverged run, two writers of one run. Each ends with one clear line and loses nothing written."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys

import pytest
import torch

from geogui.cli.train import main
from geogui.rundir import runlog as runlog_module
from geogui.engine.checkpoint import latest_checkpoint, read_checkpoint_step
from geogui.engine.metrics import BatchRecord, EventKind, RunEvent
from geogui.engine.model import MoETransformer
from geogui.rundir.meta import RunStatus, read_meta
from geogui.rundir.reader import read_lines
from geogui.rundir.recorder import record_run
from geogui.rundir.runlog import RunLog, RunLogError
from geogui.engine.trainer import Trainer

from ..fault_injection import FullDisk
from tests.conftest import tiny_settings

SETTINGS = {
    "run": {"steps": 40, "batch_size": 2, "eval_interval": 1000, "checkpoint_interval": 2, "warmup_steps": 1},
    "model": {"d_model": 16, "n_layers": 1, "n_heads": 2, "seq_len": 16, "expert_hidden": 16},
    "device": {"device": "cpu"},
}


@pytest.fixture
def settings_file(tmp_path):
    path = tmp_path / "settings.json"
    path.write_text(json.dumps(SETTINGS))
    return path


def batch_steps(run_dir) -> list[int]:
    return [r["step"] for r in read_lines(run_dir, rewind=False).lines if r["kind"] == "batch"]


def leftovers(run_dir) -> list[str]:
    return sorted(p.name for p in run_dir.rglob("*.tmp"))


def test_out_of_memory_mid_step_stops_with_a_clear_line_and_keeps_the_log(tmp_path, settings_file, monkeypatch,
                                                                         capsys):
    original = MoETransformer.forward
    calls = []

    def runs_out_at_step_6(model, *args, **kwargs):  # the forward pass of step 6 cannot allocate
        calls.append(1)
        if len(calls) == 6:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return original(model, *args, **kwargs)

    monkeypatch.setattr(MoETransformer, "forward", runs_out_at_step_6)
    out = tmp_path / "run"
    assert main(["--settings", str(settings_file), "--out", str(out), "--quiet"]) == 1
    error = capsys.readouterr().err
    assert "geogui-train: error: Out of memory at step 6 (CUDA out of memory. Tried to allocate 2.00 GiB)" in error
    assert "Traceback" not in error
    assert batch_steps(out) == [1, 2, 3, 4, 5]  # flushed, every finished step
    assert read_meta(out).status is RunStatus.FAILED
    assert read_checkpoint_step(latest_checkpoint(out)) == 5  # the state before the failed step
    assert leftovers(out) == []


def test_a_full_disk_stops_the_run_cleanly_and_nothing_written_is_lost(tmp_path, settings_file, monkeypatch, capsys):
    out = tmp_path / "run"
    disk = FullDisk(monkeypatch, after_step=5)
    assert main(["--settings", str(settings_file), "--out", str(out), "--quiet"]) == 1
    error = capsys.readouterr().err
    assert f"geogui-train: error: Disk full while writing {out / 'metrics.jsonl'} after step 5." in error, error
    assert "Free some space, then resume the run" in error and "Traceback" not in error
    assert disk.full
    assert batch_steps(out) == [1, 2, 3, 4, 5]
    meta = read_meta(out)  # the last meta.json that could be written, whole
    assert meta.status is RunStatus.RUNNING and meta.ended_at is None
    assert read_checkpoint_step(latest_checkpoint(out)) == 4  # the last one written before the disk filled
    assert leftovers(out) == []
    # Space freed: the run resumes from that checkpoint, and the lock died with the failed writer.
    disk.full = False
    monkeypatch.undo()
    assert main(["--resume", str(out), "--steps", "2", "--quiet"]) == 0
    assert read_meta(out).status is RunStatus.FINISHED


def test_a_read_only_run_directory_mid_run_is_one_line(tmp_path, settings_file, monkeypatch, capsys):
    out = tmp_path / "run"
    FullDisk(monkeypatch, after_step=3, error=errno.EROFS)
    assert main(["--settings", str(settings_file), "--out", str(out), "--quiet"]) == 1
    error = capsys.readouterr().err
    assert "(Read-only file system) after step 3. The run stopped; everything logged before it is kept." in error
    assert batch_steps(out) == [1, 2, 3]


def test_a_runs_folder_that_cannot_be_written_is_refused_before_training(tmp_path, settings_file, monkeypatch,
                                                                       capsys):
    def refuse(path, *args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", str(path))

    monkeypatch.setattr(runlog_module.Path, "mkdir", refuse)
    assert main(["--settings", str(settings_file), "--out", str(tmp_path / "run"), "--quiet"]) == 2
    error = capsys.readouterr().err
    assert error == (f"geogui-train: error: {tmp_path / 'run'}: cannot write the run directory "
                     "(Permission denied)\n")


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="needs POSIX permissions; root ignores them")
def test_a_read_only_runs_folder_for_real(tmp_path, settings_file, capsys):
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        assert main(["--settings", str(settings_file), "--out", str(folder / "run"), "--quiet"]) == 2
    finally:
        folder.chmod(0o755)
    assert "cannot write the run directory (Permission denied)" in capsys.readouterr().err


def test_a_diverged_run_keeps_its_last_good_checkpoint(tmp_path):
    trainer = Trainer(tiny_settings(steps=30, checkpoint_interval=2))
    events = []
    for event in record_run(trainer, RunLog(tmp_path / "run", trainer.settings)):
        events.append(event)
        if isinstance(event, BatchRecord) and event.step == 5:
            with torch.no_grad():  # a divergence: what too high a learning rate does to the weights
                trainer.state.model.lm_head.weight.fill_(float("inf"))
        if isinstance(event, RunEvent) and event.event is EventKind.PAUSED:
            trainer.stop()  # the run paused itself; the user closes the app
    assert any(isinstance(e, RunEvent) and e.event is EventKind.NONFINITE_LOSS and e.step == 6 for e in events)
    checkpoint = latest_checkpoint(tmp_path / "run")
    assert read_checkpoint_step(checkpoint) == 4  # not the diverged state at step 5
    weights = torch.load(checkpoint, weights_only=True)["model"]
    assert all(torch.isfinite(tensor).all() for tensor in weights.values()
               if isinstance(tensor, torch.Tensor) and tensor.is_floating_point())
    assert read_meta(tmp_path / "run").status is RunStatus.STOPPED


def test_one_writer_per_run_directory(tmp_path, monkeypatch):
    settings = tiny_settings()
    first = RunLog(tmp_path / "run", settings)
    with pytest.raises(RunLogError, match="being written by another process"):
        RunLog(tmp_path / "run", settings)
    with pytest.raises(RunLogError, match="being written by another process"):
        RunLog.reopen(tmp_path / "run", settings, 0)
    first.close("stopped")
    RunLog.reopen(tmp_path / "run", settings, 0).close("stopped")  # free again once closed
    # Two runs started in the same second with the same random suffix still get two directories.
    names = iter(["same", "same", "other"])
    monkeypatch.setattr(runlog_module, "new_run_name", lambda settings: next(names))
    a, b = RunLog.create(settings, tmp_path / "runs"), RunLog.create(settings, tmp_path / "runs")
    assert (a.path.name, b.path.name) == ("same", "other")
    a.close("stopped")
    b.close("stopped")


def test_a_second_process_cannot_write_a_run_that_is_being_written(tmp_path, settings_file):
    out = tmp_path / "run"
    holder = RunLog(out, tiny_settings())  # this process writes it
    try:
        result = subprocess.run([sys.executable, "-m", "geogui.cli.train", "--settings", str(settings_file), "--out",
                                 str(out), "--quiet"], capture_output=True, text=True, timeout=120)
    finally:
        holder.close("stopped")
    assert result.returncode == 2
    assert result.stderr.strip() == f"geogui-train: error: {out}: the run is being written by another process"
    assert read_lines(out).lines == [] and read_meta(out).status is RunStatus.STOPPED
