"""A run another process is writing, read as it grows: what it wrote since the last read, whether it
is still being written, and whether its trainer looks alive."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from geogui.rundir.catalog import MetricsTail
from geogui.rundir.runlog import METRICS_FILE, RunLogError, effective_status, read_meta
from geogui.gui.plotdata.run_source import TORN_TAIL_NOTE, RunShape


@dataclass
class FollowedUpdate:
    status: str | None  # meta.json's effective status; None when it could not be read
    meta_error: str | None  # why meta.json could not be read
    columns: object  # the records appended since the last read, as columns
    reset: bool  # a resume superseded records: the run must be plotted again from these columns
    running: bool  # still being written

    @property
    def fresh(self) -> bool:
        columns = self.columns
        return bool(len(columns) or len(columns.eval_step) or columns.mode_changes or columns.events)


class FollowedRun:
    def __init__(self, path: Path, shape: RunShape, stall_after_s: float) -> None:
        self.path = path
        self.shape = shape
        self.tail = MetricsTail(path)
        self._stall_after_s = stall_after_s
        try:  # until a new record arrives, the trainer was last heard from when the file last changed
            self._last_record_at = (path / METRICS_FILE).stat().st_mtime
        except OSError:
            self._last_record_at = time.time()
        self.catching_up = True  # the first read takes the run's history: no sign of life

    def read(self) -> FollowedUpdate:
        """What the run has written since the last read (columns, not an object per batch: a long
        run's history), and whether it is still being written."""
        error = None
        try:
            status = effective_status(read_meta(self.path))  # read before the records: none is missed at the end
        except RunLogError as exc:
            status, error = None, str(exc)
        columns, reset = self.tail.poll_columns()
        update = FollowedUpdate(status, error, columns, reset,
                                status == "running" or status is None and (self.path / METRICS_FILE).exists())
        if update.fresh and not self.catching_up:
            self._last_record_at = time.time()
        return update

    def liveness(self, paused: bool) -> tuple[str, float]:
        """"paused", "alive" or "stalled" (no record for a while), and the seconds since the last record."""
        silent = time.time() - self._last_record_at
        return ("paused" if paused else "alive" if silent <= self._stall_after_s else "stalled"), silent

    def end_notes(self) -> list[str]:
        """What was wrong with the run's files once it has ended, one line each."""
        notes = [TORN_TAIL_NOTE] if self.tail.incomplete_tail else []
        if self.tail.skipped_lines:
            notes.append(f"{self.tail.skipped_lines} line(s) of metrics.jsonl are not JSON; they were skipped")
        return notes
