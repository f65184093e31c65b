"""Faults injected into the real code paths, shared by the engine and app fault suites."""

from __future__ import annotations

import errno
import os

from geogui.rundir import recorder as recorder_module
from geogui.rundir import runlog as runlog_module
from geogui.engine.metrics import BatchRecord
from geogui.rundir.runlog import RunLog


class FullDisk:
    """From the first batch after `after_step`, every write of the run directory fails with `error`
    (ENOSPC: disk full; EROFS: read-only): the metrics lines, meta.json and checkpoints alike."""

    def __init__(self, monkeypatch, after_step: int, error: int = errno.ENOSPC):
        self.full = False
        self.error = error
        original_write, original_meta = RunLog.write, runlog_module.write_json_atomic
        original_checkpoint = recorder_module.save_checkpoint

        def write(log, event):
            if isinstance(event, BatchRecord) and event.step > after_step:
                self.full = True
            self.check(log.path / "metrics.jsonl")
            return original_write(log, event)

        def write_meta(path, data):
            self.check(path)
            return original_meta(path, data)

        def save_checkpoint(run_dir, *args):
            self.check(run_dir / "checkpoints")
            return original_checkpoint(run_dir, *args)

        monkeypatch.setattr(RunLog, "write", write)
        monkeypatch.setattr(runlog_module, "write_json_atomic", write_meta)
        monkeypatch.setattr(recorder_module, "save_checkpoint", save_checkpoint)

    def check(self, path) -> None:
        if self.full:
            raise OSError(self.error, os.strerror(self.error), str(path))
